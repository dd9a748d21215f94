"""Plan → ARM template → checkov, in one call (used by ``azml plan`` and ``azml checkov``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..plan.model import Plan
from ..files import write_atomically
from .checkov import CheckovReport, checkov_executable, run_checkov
from .export import export_resources, render_template
from .skips import SKIPS, Skip

TEMPLATE_PATH = Path("arm") / "template.json"


def export_and_scan(
    plan: Plan,
    out_dir: Path,
    skips: Sequence[Skip] = SKIPS,
    *,
    stack_file: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> CheckovReport:
    """Export ``plan`` to ``out_dir/arm/template.json``, run checkov over it (and its
    secrets checks over ``stack_file`` too: a stack file holds no plain secret)
    and write ``out_dir/checkov.sarif`` (and ``out_dir/checkov.json``, the curated report).
    ``on_phase`` is told "ARM export" and then "checkov" as each starts (progress).

    Raises :class:`azml.arm.checkov.CheckovNotInstalled` when checkov is missing
    and :class:`azml.arm.checkov.CheckovError` when it cannot run; failed
    checks are in the returned report (``report.ok`` is false), not raised.
    """
    checkov_executable()  # fail before writing anything when checkov is missing
    out_dir = Path(out_dir)
    if on_phase is not None:
        on_phase("ARM export")
    template, index = export_resources(plan)
    path = out_dir / TEMPLATE_PATH
    write_atomically(path, render_template(template))
    secrets_in = (stack_file,) if stack_file is not None else ()
    if on_phase is not None:
        on_phase("checkov")
    return run_checkov(path, out_dir, skips, stack=environment_of(plan), index=index, secrets_in=secrets_in)


def environment_of(plan: Plan) -> str:
    """The stack's ``azml:environment`` (tagged on every resource); skips are
    chosen by environment, so a stack named ``dev-eu`` gets dev's skips."""
    for resource in plan.of_type("azure-native:resources:ResourceGroup"):
        tags = resource.inputs.get("tags")
        if isinstance(tags, dict) and isinstance(tags.get("environment"), str):
            return tags["environment"]
    return plan.stack
