"""
EC2's current AMI life-cycle APIs, which moto 5.2.1 lacks, kept on moto's own Ami objects.
AWS's documented behaviour (EC2 API Reference; docs/lifecycle.md cites each page) and what is added here:
- DeregisterImage DeleteAssociatedSnapshots: the image's snapshots are deleted with it; DeleteSnapshotResults
  gives each one's ReturnCode (success, or skipped when another image still uses it). A protected image is refused.
- DisableImage / EnableImage: state `disabled`, launch permissions removed; DescribeImages leaves disabled images out
  unless IncludeDisabled is true. Only the owner may disable or enable.
- EnableImageDeprecation / DisableImageDeprecation: DeprecationTime, rounded to the minute; DeprecateAt must be in the
  future and at most 10 years ahead.
- Enable/DisableImageDeregistrationProtection: DeregistrationProtection; WithCooldown keeps a disabled protection for
  24 hours ("disabled-until <time>"), during which DeregisterImage is refused.
- DescribeImageReferences: instances (by state-name), launch templates (the newest version-depth versions, default
  10) and SSM parameters of the account and region whose value is the image; 1-10 image IDs per call.
- CopyImage: TagSpecifications (image and snapshot) are applied, and SourceImageId / SourceImageRegion recorded.
- RunInstances (direct or through Auto Scaling): LastLaunchedTime of the image. AWS reports it up to 24 h late;
  here it is set at once.
- GetAllowedImagesSettings: an account's default (State disabled, no criteria, managed by the account).
- DescribeImages filter block-device-mapping.snapshot-id.
What AWS does not document (the error code of DeregisterImage on a protected image) is marked below; the pipeline does
not depend on it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError, UnvailableAMIIdError
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses import EC2Response
from moto.ec2.responses.amis import AmisResponse

_installed = False
COOLDOWN = timedelta(hours=24)
MAX_DEPRECATION = timedelta(days=3652)
REFERENCE_TYPES = ["ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter", "imagebuilder:ImageRecipe", "imagebuilder:ContainerRecipe"]
# Not in AWS's documentation: the code EC2 gives DeregisterImage on a protected image (pipeline code never matches it).
PROTECTED_CODE = "OperationNotPermitted"


def _now() -> datetime:
    return utcnow().replace(tzinfo=None)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _protection(ami: Ami) -> str:
    state = ami.__dict__.get("_protection", "disabled")
    until = ami.__dict__.get("_protection_until")
    if state == "disabled-until":
        if until is None or _now() >= until:
            ami._protection = "disabled"
            return "disabled"
        return f"disabled-until {_iso(until)}"
    return state


def _owned_image(self: EC2Response, image_id: str) -> Ami:
    ami = self.ec2_backend.amis.get(image_id)
    if ami is None:
        if image_id in self.ec2_backend.deleted_amis:
            raise UnvailableAMIIdError(image_id)
        raise InvalidAMIIdError(image_id)
    if ami.owner_id != self.ec2_backend.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    return ami


def _arn(self: EC2Response, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{self.region}:{self.ec2_backend.account_id}:{resource}"


# --- the new actions ---------------------------------------------------------------------------------------------

def disable_image(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    ami.state = "disabled"
    ami.launch_permissions = []
    return ActionResult({"Return": True})


def enable_image(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    if ami.state == "disabled":
        ami.state = "available"
    return ActionResult({"Return": True})


def enable_image_deprecation(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    raw = self._get_param("DeprecateAt")
    at = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    self.error_on_dryrun()
    now = _now()
    if at <= now:
        raise EC2ClientError("InvalidParameterValue", "DeprecateAt cannot be in the past.")
    if at - now > MAX_DEPRECATION:
        raise EC2ClientError("InvalidParameterValue", "DeprecateAt cannot be more than 10 years in the future.")
    rounded = (at + timedelta(seconds=30)).replace(second=0, microsecond=0)
    ami.deprecation_time = _iso(rounded)
    return ActionResult({"Return": True})


def disable_image_deprecation(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    ami.deprecation_time = None
    return ActionResult({"Return": True})


def enable_image_deregistration_protection(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    cooldown = self._get_bool_param("WithCooldown", False)
    self.error_on_dryrun()
    ami._protection = "enabled-with-cooldown" if cooldown else "enabled"
    ami._protection_until = None
    return ActionResult({"Return": "enabled-with-cooldown" if cooldown else "enabled-without-cooldown"})


def disable_image_deregistration_protection(self: EC2Response) -> ActionResult:
    ami = _owned_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    if _protection(ami) == "enabled-with-cooldown":
        ami._protection = "disabled-until"
        ami._protection_until = _now() + COOLDOWN
    elif _protection(ami) == "enabled":
        ami._protection = "disabled"
    return ActionResult({"Return": _protection(ami)})


def describe_image_references(self: EC2Response) -> ActionResult:
    image_ids: list[str] = self._get_param("ImageIds", [])
    include_all = self._get_bool_param("IncludeAllResourceTypes", False)
    requested: list[dict[str, Any]] = self._get_param("ResourceTypes", [])
    self.error_on_dryrun()
    if not 1 <= len(image_ids) <= 10:
        raise EC2ClientError("InvalidParameterValue", "ImageIds must name between 1 and 10 images.")
    if not include_all and not requested:
        raise EC2ClientError("MissingParameter", "Either IncludeAllResourceTypes or ResourceTypes must be specified.")
    for image_id in image_ids:
        if image_id not in self.ec2_backend.amis:
            raise InvalidAMIIdError(image_id)
    options: dict[str, dict[str, list[str]]] = {t: {} for t in (REFERENCE_TYPES if include_all else [])}
    for entry in requested:
        kind = entry.get("ResourceType")
        if kind not in REFERENCE_TYPES:
            raise EC2ClientError("InvalidParameterValue", f"Unsupported resource type: {kind}")
        options[kind] = {o.get("OptionName"): list(o.get("OptionValues", [])) for o in entry.get("ResourceTypeOptions", [])}
    wanted = set(image_ids)
    found: list[dict[str, str]] = []
    if "ec2:Instance" in options:
        states = set(options["ec2:Instance"].get("state-name") or ["pending", "running", "shutting-down", "terminated", "stopping", "stopped"])
        for instance in self.ec2_backend.all_instances():
            if instance.image_id in wanted and instance.state in states:
                found.append({"ImageId": instance.image_id, "ResourceType": "ec2:Instance", "Arn": _arn(self, "ec2", f"instance/{instance.id}")})
    if "ec2:LaunchTemplate" in options:
        depth = int((options["ec2:LaunchTemplate"].get("version-depth") or ["10"])[0])
        for template in list(self.ec2_backend.launch_templates.values()):
            for image_id in sorted({v.image_id for v in template.versions[-depth:]} & wanted):
                found.append({"ImageId": image_id, "ResourceType": "ec2:LaunchTemplate", "Arn": _arn(self, "ec2", f"launch-template/{template.id}")})
    if "ssm:Parameter" in options:
        from moto.ssm.models import ssm_backends

        parameters = ssm_backends[self.ec2_backend.account_id][self.region]._parameters
        for name, versions in list(parameters.items()):
            if versions and versions[-1].value in wanted:
                found.append({"ImageId": versions[-1].value, "ResourceType": "ssm:Parameter", "Arn": _arn(self, "ssm", f"parameter/{name.lstrip('/')}")})
    return ActionResult({"ImageReferences": found})


def get_allowed_images_settings(self: EC2Response) -> ActionResult:
    self.error_on_dryrun()
    return ActionResult({"State": "disabled", "ImageCriteria": [], "ManagedBy": "account"})


# --- moto's own actions, completed ----------------------------------------------------------------------------------

_describe_images = AmisResponse.describe_images
_copy_image = AmisResponse.copy_image
_run_instances = InstanceBackend.run_instances
_get_filter_value = Ami.get_filter_value


def deregister_image(self: EC2Response) -> ActionResult:
    image_id = self._get_param("ImageId")
    delete_snapshots = self._get_bool_param("DeleteAssociatedSnapshots", False)
    self.error_on_dryrun()
    backend = self.ec2_backend
    ami = backend.amis.get(image_id)
    if ami is not None and _protection(ami) != "disabled":
        raise EC2ClientError(PROTECTED_CODE, f"The image {image_id} has deregistration protection enabled ({_protection(ami)}).")
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in ami.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")] if ami else []
    backend.deregister_image(image_id)
    result: dict[str, Any] = {"Return": True}
    if delete_snapshots:
        results = []
        for snapshot_id in snapshot_ids:
            used = any(snapshot_id in [m.get("Ebs", {}).get("SnapshotId") for m in other.block_device_mappings] for other in backend.amis.values())
            if used:
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "skipped"})
                continue
            backend.delete_snapshot(snapshot_id)
            results.append({"SnapshotId": snapshot_id, "ReturnCode": "success"})
        result["DeleteSnapshotResults"] = results
    return ActionResult(result)


def describe_images(self: EC2Response) -> ActionResult:
    images = _describe_images(self).result["Images"]  # type: ignore[index]
    if not self._get_bool_param("IncludeDisabled", False):
        images = [i for i in images if i.state != "disabled"]
    return ActionResult({"Images": images})


def copy_image(self: EC2Response) -> ActionResult:
    specs: list[dict[str, Any]] = self._get_param("TagSpecifications", [])
    for spec in specs:
        if spec.get("ResourceType") not in ("image", "snapshot"):
            raise EC2ClientError("InvalidParameterValue", f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation.")
    result = _copy_image(self)
    image_id = result.result["ImageId"]  # type: ignore[index]
    ami = self.ec2_backend.amis[image_id]
    ami.source_image_id = self._get_param("SourceImageId")
    ami.source_image_region = self._get_param("SourceRegion")
    for spec in specs:
        tags = {t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])}
        resources = [image_id] if spec["ResourceType"] == "image" else [ami.ebs_snapshot.id]
        if tags:
            self.ec2_backend.create_tags(resources, tags)
    return result


def run_instances(self: InstanceBackend, *args: Any, **kwargs: Any) -> Any:
    reservation = _run_instances(self, *args, **kwargs)
    for instance in reservation.instances:
        ami = self.amis.get(instance.image_id)  # type: ignore[attr-defined]
        if ami is not None:
            ami.last_launched_time = _iso(_now())
    return reservation


def get_filter_value(self: Ami, filter_name: str, method_name: str | None = None) -> Any:
    if filter_name == "block-device-mapping.snapshot-id":
        return [m["Ebs"]["SnapshotId"] for m in self.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]
    return _get_filter_value(self, filter_name, method_name)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    # What DescribeImages serializes (moto's serializer reads these snake_case attributes of the Ami).
    Ami.source_image_id = None
    Ami.source_image_region = None
    Ami.deprecation_time = None
    Ami.last_launched_time = None
    Ami.deregistration_protection = property(_protection)
    Ami.get_filter_value = get_filter_value
    InstanceBackend.run_instances = run_instances
    for action in (
        disable_image,
        enable_image,
        enable_image_deprecation,
        disable_image_deprecation,
        enable_image_deregistration_protection,
        disable_image_deregistration_protection,
        describe_image_references,
        get_allowed_images_settings,
        deregister_image,
        describe_images,
        copy_image,
    ):
        setattr(EC2Response, action.__name__, action)
