"""``azml config``: edit a stack file's non-secret keys safely (see
:mod:`azml.config.setting` for the guarantees)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, ProjectDir, fail

config_app = typer.Typer(no_args_is_help=True, help="Edit a stack file's non-secret azml: keys.\n\nValidated, comments kept, written atomically.")


@config_app.command("set")
def set_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml) or path to a stack config file.")],
    key: Annotated[str, typer.Argument(help="Pulumi --path key: azml:release.gate.maxPsi, azml:onlineEndpoints[0].deployments[0].model.version")],
    value: Annotated[str, typer.Argument(help="The value, read as YAML (4 is a number, true a boolean, [10, 50, 100] a list).")],
    as_string: Annotated[bool, typer.Option("--string", help="Store VALUE as text, whatever it looks like.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Set one non-secret azml: key in a stack file.

    Set KEY to VALUE in the stack file, keeping comments, key order and
    style; the result is validated as `azml plan` reads it before it replaces
    the file (atomically). Secrets are refused: use `pulumi config set --secret`.
    Exit 0 when set (or already so), 2 on a bad key, value or resulting
    config, 1 when the file is read-only or locked or the disk refuses (as
    `azml release advance`)."""
    from ..config.loader import ConfigError
    from ..config.setting import SettingError, set_key
    from ..release.traffic.stackedit import StackEditError

    try:
        result = set_key(stack, key, value, as_string=as_string, project_dir=project_dir)
    except (SettingError, ConfigError) as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    except StackEditError as error:
        fail(EXIT_PROGRAM_ERROR, error.problems)
    if result.changed:
        shown = "(unset)" if result.old is None else repr(result.old)
        typer.echo(f"{result.path.name}: {key}: {shown} -> {result.new!r}")
    else:
        typer.echo(f"{result.path.name}: {key} is already {result.new!r}; not rewritten")
