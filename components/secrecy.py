"""Secret config stays a Pulumi secret in every resource input it reaches.

Components take typed config objects with plain values, and a config value
can flow into many inputs (a tag reaches every resource). Rather than every
component remembering which of its inputs may carry a secret, one stack
transformation — Pulumi's own hook that runs in the program, for every
resource, before it is registered — wraps each input value that reveals a
secret (:func:`azml.config.secrets.revealed`) in ``Output.secret``. The
engine then encrypts it in the state and masks it in previews; outputs the
provider echoes for a secret input are marked secret by the engine.
Inputs computed from other resources (``Output`` values) are checked when
they resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi._types import is_input_type  # what @pulumi.input_type marks

from azml.config.secrets import revealed


def _protect(value: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return pulumi.Output.secret(value) if revealed(value, secrets) else value
    if isinstance(value, pulumi.Output):
        return value.apply(lambda resolved: _protect_resolved(resolved, secrets))
    if isinstance(value, dict):
        return {k: _protect(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_protect(v, secrets) for v in value]
    if is_input_type(type(value)):
        # Typed *Args classes (e.g. ManagedOnlineDeploymentArgs) keep their fields as attributes.
        for name, item in list(vars(value).items()):
            pulumi.set(value, name, _protect(item, secrets))
        return value
    return value


def _reveals(value: Any, secrets: Mapping[str, str]) -> bool:
    if isinstance(value, str):
        return bool(revealed(value, secrets))
    if isinstance(value, dict):
        return any(_reveals(v, secrets) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_reveals(v, secrets) for v in value)
    return False


def _protect_resolved(value: Any, secrets: Mapping[str, str]) -> Any:
    # A value computed from config (Output.concat(..., name)) may reveal a secret once resolved.
    return pulumi.Output.secret(value) if _reveals(value, secrets) else value


def keep_secrets_secret(secrets: Mapping[str, str]) -> None:
    """Register the transformation for every resource created after this call
    (call it before creating any). Nothing is registered without secrets."""
    if not secrets:
        return

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        return pulumi.ResourceTransformationResult(props=_protect(args.props, secrets), opts=args.opts)

    pulumi.runtime.register_stack_transformation(transformation)
