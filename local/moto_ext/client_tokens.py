"""
CopyImage's ClientToken, which moto 5.2.1 ignores (every call makes a new image). AWS's documented behaviour
(EC2 API Reference, "Ensuring idempotency in Amazon EC2 API requests"; docs/concurrent-runs.md cites it):
- a request repeated with the same client token and the same parameters returns the result of the original request
  (the same ImageId, also once that image was deregistered) and makes nothing new;
- the same client token with one or more other parameters is refused with IdempotentParameterMismatch;
- a token is at most 64 ASCII characters;
- the Region is not compared: the same token in another Region makes another image (each Region has its own backend
  here, so its own tokens).
Tokens are kept per account and Region on moto's own backend, under a lock (the server answers requests in threads).
"""
from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

_installed = False
_lock = threading.Lock()
_IGNORED = {"Action", "Version", "ClientToken"}
# EC2's message for IdempotentParameterMismatch (as the EC2 API returns it for RunInstances and CopyImage).
MISMATCH = "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."


def _params(self: EC2Response) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((k, tuple(v)) for k, v in self.querystring.items() if k not in _IGNORED))


def _wrap(original: Any) -> Any:
    def copy_image(self: EC2Response) -> ActionResult:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        if len(token) > 64:
            raise EC2ClientError("InvalidParameterValue", "The client token must be at most 64 ASCII characters.")
        params = _params(self)
        with _lock:
            tokens: dict[str, tuple[Any, str]] = self.ec2_backend.__dict__.setdefault("_copy_image_tokens", {})
            known = tokens.get(token)
            if known is not None:
                if known[0] != params:
                    raise EC2ClientError("IdempotentParameterMismatch", MISMATCH)
                return ActionResult({"ImageId": known[1]})
            result = original(self)
            tokens[token] = (params, result.result["ImageId"])  # type: ignore[index]
            return result

    copy_image.__name__ = "copy_image"
    return copy_image


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    # Wraps whatever CopyImage is installed (ami_lifecycle's, which applies TagSpecifications): install after it.
    setattr(EC2Response, "copy_image", _wrap(EC2Response.copy_image))
