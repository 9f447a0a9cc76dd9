"""
The payload limits of the services the pipeline writes to, which moto 5.2.1 does not hold (docs/limits.md cites the
AWS page of each):
- EventBridge PutEvents: the entries of one request must total less than 256 KB, each entry counted as AWS counts it
  (Time 14 bytes when given; Source, DetailType, Detail and each of Resources as UTF-8 bytes). moto has no check.
  Past it the whole request is refused (ValidationException).
- SNS Publish: a message of at most 262,144 bytes. moto counts characters, so a message of multi-byte characters
  passed; here the UTF-8 bytes are counted too (InvalidParameter "Invalid parameter: Message too long").
- SSM PutParameter: a value of at most 4,096 characters in the Standard tier, 8,192 in the Advanced tier;
  Intelligent-Tiering takes Advanced for a larger value. moto has no check. The Standard message is AWS's own.
"""
from __future__ import annotations

import inspect
from typing import Any

from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend
from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend
from moto.ssm.exceptions import ValidationException as SsmValidationException
from moto.ssm.models import SimpleSystemManagerBackend

_installed = False

PUT_EVENTS_MAX_BYTES = 256 * 1024
SNS_MESSAGE_MAX_BYTES = 262_144
SSM_STANDARD_MAX = 4_096
SSM_ADVANCED_MAX = 8_192
SSM_ADVANCED_URL = "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html"


def _utf8(value: Any) -> int:
    return len(str(value).encode("utf-8")) if value is not None else 0


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge's user guide computes it ("Calculating PutEvents event entry size")."""
    size = 14 if entry.get("Time") is not None else 0
    size += _utf8(entry.get("Source")) + _utf8(entry.get("DetailType")) + _utf8(entry.get("Detail"))
    size += sum(_utf8(r) for r in entry.get("Resources") or [])
    return size


def check_put_events(entries: list[dict[str, Any]]) -> None:
    total = sum(put_events_entry_size(e) for e in entries)
    if total >= PUT_EVENTS_MAX_BYTES:
        raise EventsValidationException(
            f"Total size of the entries in the request is over the limit ({total} bytes; the limit is {PUT_EVENTS_MAX_BYTES})."
        )


def check_sns_message(message: str) -> None:
    if _utf8(message) > SNS_MESSAGE_MAX_BYTES:
        raise InvalidParameterValue("Invalid parameter: Message too long")


def ssm_value_problem(value: str, tier: str) -> str | None:
    """Why PutParameter refuses this value in this tier (None when it fits)."""
    if tier == "Standard" and len(value) > SSM_STANDARD_MAX:
        return (
            f"Standard tier parameters support a maximum parameter value of {SSM_STANDARD_MAX} characters. To create a larger "
            f"parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see {SSM_ADVANCED_URL}"
        )
    if len(value) > SSM_ADVANCED_MAX:
        return (
            f"1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than "
            f"or equal to {SSM_ADVANCED_MAX}"
        )
    return None


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True

    put_events = EventsBackend.put_events

    def put_events_checked(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        check_put_events(events)
        return put_events(self, events)

    EventsBackend.put_events = put_events_checked  # type: ignore[method-assign]

    publish = SNSBackend.publish
    publish_signature = inspect.signature(publish)

    def publish_checked(self: SNSBackend, *args: Any, **kwargs: Any) -> str:
        bound = publish_signature.bind(self, *args, **kwargs)
        check_sns_message(bound.arguments.get("message") or "")
        return publish(self, *args, **kwargs)

    SNSBackend.publish = publish_checked  # type: ignore[method-assign]

    put_parameter = SimpleSystemManagerBackend.put_parameter
    put_signature = inspect.signature(put_parameter)

    def put_parameter_checked(self: SimpleSystemManagerBackend, *args: Any, **kwargs: Any) -> Any:
        bound = put_signature.bind(self, *args, **kwargs)
        value = bound.arguments.get("value") or ""
        tier = bound.arguments.get("tier")
        if tier is None:
            store = self._parameters  # moto's own store of this account and region
            existing = store.get(store.normalize_name(bound.arguments.get("name") or ""))
            tier = existing[-1].tier if existing else self.default_parameter_tier
        if tier == "Intelligent-Tiering":
            tier = "Advanced" if len(value) > SSM_STANDARD_MAX else "Standard"
        problem = ssm_value_problem(value, tier)
        if problem:
            raise SsmValidationException(problem)
        return put_parameter(self, *args, **kwargs)

    SimpleSystemManagerBackend.put_parameter = put_parameter_checked  # type: ignore[method-assign]
