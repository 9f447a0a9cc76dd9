"""
Test-side extensions of moto 5.2.1: AWS behaviours the pipeline relies on that moto lacks, added to moto's own
classes before its server starts (local/moto-server.py; started by local/moto.ts and .ci/run). Nothing shipped
imports this: functions/ talk to whatever endpoint the SDK's standard settings name.

Each module of this package adds one area and exposes `install()`. To add one:
  1. write local/moto_ext/<area>.py with an `install()` that patches moto's classes (EC2 responses dispatch by
     action name to methods of moto.ec2.responses.EC2Response: `setattr(EC2Response, "disable_image", fn)` adds
     the DisableImage action; keep state on moto's own model objects, so reset and multi-account work as in moto);
  2. add its name to MODULES below;
  3. check it against AWS's documented responses in test/moto-ext/<area>.test.ts (over the SDK, like the pipeline).
Installing twice is harmless: every module guards itself with `_installed`.
"""
from importlib import import_module

MODULES = ["ami_lifecycle", "client_tokens", "event_transform", "payload_limits", "recycle_bin"]


def install() -> None:
    for name in MODULES:
        import_module(f"{__name__}.{name}").install()
