"""
Amazon Recycle Bin (service rbin, REST-JSON, API version 2021-06-15), which moto 5.2.1 lacks: retention rules per
account and region, for the doctor's Recycle Bin check. From the Recycle Bin API Reference:
- CreateRule: POST /rules, HTTP 201. RetentionPeriod (RetentionPeriodValue 1-3650, RetentionPeriodUnit DAYS) and
  ResourceType (EBS_SNAPSHOT | EC2_IMAGE | EBS_VOLUME) required; Description, ResourceTags (at most 50),
  ExcludeResourceTags (at most 5; region-level rules only, that is without ResourceTags). The answer echoes the rule
  with its Identifier (11 alphanumerics), RuleArn (arn:aws:rbin:<region>:<account>:rule/<id>) and Status (here
  `available` at once; AWS documents `pending` first).
- ListRules: POST /list-rules, HTTP 200. ResourceType required; LockState filters; ResourceTags (tag-level rules)
  and ExcludeResourceTags (Region-level rules) filter by the tags a rule carries; MaxResults 1-1000 with NextToken
  paging. Rules come back as RuleSummary (Identifier, Description, RetentionPeriod, LockState, RuleArn).
- Errors: ValidationException (HTTP 400) for a missing or invalid field.
Not implemented (the pipeline does not use them): rule locks; the other actions.
The service is added to moto's server the way moto's own are: a BackendDict per account and region (reset with
the others), a URL pattern for rbin.<region>.amazonaws.com, and moto's request routing by the SigV4 signing name.
"""
from __future__ import annotations

import json
import random
import re
import string
import sys
import types
from typing import Any

from moto import backend_index
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse

_installed = False
RESOURCE_TYPES = ("EBS_SNAPSHOT", "EC2_IMAGE", "EBS_VOLUME")
LOCK_STATES = ("locked", "pending_unlock", "unlocked")


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ValidationException", message)


class RecycleBinBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.rules: dict[str, dict[str, Any]] = {}

    @property
    def url_paths(self) -> dict[str, Any]:  # type: ignore[override]
        return {"/list-rules$": RecycleBinResponse.dispatch, "/rules$": RecycleBinResponse.dispatch}

    def create_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        resource_type = body.get("ResourceType")
        if resource_type not in RESOURCE_TYPES:
            raise ValidationException(f"ResourceType must be one of {', '.join(RESOURCE_TYPES)}")
        period = body.get("RetentionPeriod") or {}
        value = period.get("RetentionPeriodValue")
        if not isinstance(value, int) or not 1 <= value <= 3650 or period.get("RetentionPeriodUnit") != "DAYS":
            raise ValidationException("RetentionPeriod needs RetentionPeriodValue 1-3650 and RetentionPeriodUnit DAYS")
        resource_tags = body.get("ResourceTags") or []
        exclude = body.get("ExcludeResourceTags") or []
        _check_tag_counts(resource_tags, exclude)
        if resource_tags and exclude:
            raise ValidationException("ExcludeResourceTags applies to Region-level retention rules only (no ResourceTags)")
        identifier = "".join(random.choices(string.ascii_letters + string.digits, k=11))
        rule = {
            "Identifier": identifier,
            "Description": body.get("Description", ""),
            "ResourceType": resource_type,
            "RetentionPeriod": {"RetentionPeriodValue": value, "RetentionPeriodUnit": "DAYS"},
            "ResourceTags": resource_tags,
            "ExcludeResourceTags": exclude,
            "Tags": body.get("Tags") or [],
            "Status": "available",
            "RuleArn": f"arn:aws:rbin:{self.region_name}:{self.account_id}:rule/{identifier}",
        }
        self.rules[identifier] = rule
        return rule

    def list_rules(self, body: dict[str, Any]) -> dict[str, Any]:
        resource_type = body.get("ResourceType")
        if resource_type not in RESOURCE_TYPES:
            raise ValidationException(f"ResourceType is required: one of {', '.join(RESOURCE_TYPES)}")
        # ResourceTags lists tag-level rules, ExcludeResourceTags Region-level ones, by the tags they carry: a rule
        # matches when it carries every tag given (ResourceTagKey, and ResourceTagValue when given).
        wanted = body.get("ResourceTags") or []
        unwanted = body.get("ExcludeResourceTags") or []
        _check_tag_counts(wanted, unwanted)
        lock_state = body.get("LockState")
        if lock_state is not None and lock_state not in LOCK_STATES:
            raise ValidationException(f"LockState must be one of {', '.join(LOCK_STATES)}")
        max_results = body.get("MaxResults", 1000)
        if not isinstance(max_results, int) or not 1 <= max_results <= 1000:
            raise ValidationException("MaxResults must be between 1 and 1000")
        matching = [
            r
            for r in self.rules.values()
            if r["ResourceType"] == resource_type
            and (lock_state is None or r.get("LockState") == lock_state)
            and _carries(r["ResourceTags"], wanted)
            and _carries(r["ExcludeResourceTags"], unwanted)
        ]
        token = body.get("NextToken")
        start = int(token) if token and re.fullmatch(r"\d+", token) else 0
        page = matching[start : start + max_results]
        out: dict[str, Any] = {
            "Rules": [{k: r[k] for k in ("Identifier", "Description", "RetentionPeriod", "LockState", "RuleArn") if k in r} for r in page]
        }
        if start + max_results < len(matching):
            out["NextToken"] = str(start + max_results)
        return out


def _check_tag_counts(resource_tags: list[Any], exclude: list[Any]) -> None:
    if len(resource_tags) > 50 or len(exclude) > 5:
        raise ValidationException("ResourceTags takes at most 50 tags, ExcludeResourceTags at most 5")


def _carries(tags: list[dict[str, Any]], given: list[dict[str, Any]]) -> bool:
    """Whether a rule's tags include every given tag (a given tag without a value matches the key alone)."""
    return all(
        any(t.get("ResourceTagKey") == g.get("ResourceTagKey") and ("ResourceTagValue" not in g or t.get("ResourceTagValue") == g["ResourceTagValue"]) for t in tags)
        for g in given
    )


class RecycleBinResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="rbin")

    @property
    def backend(self) -> RecycleBinBackend:
        return rbin_backends[self.current_account][self.region]

    def _json(self) -> dict[str, Any]:
        return json.loads(self.body or "{}")

    def create_rule(self) -> tuple[int, dict[str, str], str]:
        return 201, {"status": 201, "Content-Type": "application/json"}, json.dumps(self.backend.create_rule(self._json()))

    def list_rules(self) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "application/json"}, json.dumps(self.backend.list_rules(self._json()))


rbin_backends = BackendDict(RecycleBinBackend, "rbin")


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    # moto's server finds a service's backends as moto.<name>.<name>_backends (moto.backends.get_backend).
    module = types.ModuleType("moto.rbin")
    module.rbin_backends = rbin_backends  # type: ignore[attr-defined]
    sys.modules["moto.rbin"] = module
    backend_index.backend_url_patterns.append(("rbin", re.compile(r"https?://rbin\.(.+)\.amazonaws\.com")))
