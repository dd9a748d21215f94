"""``azml release bandit``: Thompson-sampling traffic for one endpoint.

Exit codes: 0 written, unchanged or dry run; 1 refused (no eligible
deployment with enough samples, stack file changed or locked, MLflow
unreachable); 2 bad input (unknown stack or endpoint, endpoint not in
``azml:release.bandits``, negative seed).
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ..common import EXIT_INVALID_INPUT, Experiment, OutputFormat, ProjectDir, TextOrJson, TrackingUri, fail


def bandit_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint listed in azml:release.bandits.")],
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Seed of the posterior sampling (default: random; always logged).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and print the allocation; write and log nothing.")
    ] = False,
    output_format: TextOrJson = OutputFormat.text,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
) -> None:
    """Set the live split by Thompson sampling on observations.

    Set the endpoint's live split by Thompson sampling on the window's
    observations: deployments failing the fairness or error-rate gate get 0,
    the rest shares within floorPercent..ceilingPercent summing to 100.
    Logs the allocation to MLflow and rewrites Pulumi.STACK.yaml."""
    from ...release.traffic.advance import AdvanceError, command_text
    from ...release.traffic.bandit import run_bandit

    if seed is not None and seed < 0:
        fail(EXIT_INVALID_INPUT, [f"--seed: must be a whole number >= 0 (got {seed})"])
    try:
        allocation = run_bandit(
            stack, endpoint, seed=seed, dry_run=dry_run, project_dir=project_dir,
            tracking_uri=tracking_uri, experiment=experiment,
        )
    except AdvanceError as error:
        fail(error.code, error.problems)
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(allocation.to_json(), indent=2))
        return
    _print_table(allocation)
    if allocation.dry_run:
        typer.echo(f"dry run: nothing written, nothing logged (seed {allocation.seed})")
    elif not allocation.changed:
        typer.echo(f"the split is unchanged; allocation logged to MLflow run {allocation.run_id}")
    else:
        typer.echo(f"rewritten (allocation logged to MLflow run {allocation.run_id}):")
        for line in allocation.diff:
            typer.echo(f"  {line}")
        typer.echo(f"apply it with: {command_text(allocation.pulumi_command)}")


def _print_table(allocation: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from ...release.traffic.bandit import Allocation

    assert isinstance(allocation, Allocation)
    console = Console(width=140)
    console.print(
        f"bandit on {allocation.endpoint} ({allocation.stack}): reward {allocation.reward_metric}, "
        f"{allocation.draws} draws, seed {allocation.seed}, window {allocation.window_minutes} min"
    )
    table = Table("deployment", "before %", "after %", "n", "successes", "Beta(a, b)", "mean", "P(best)", "status")
    for arm in allocation.arms:
        table.add_row(
            arm.deployment, str(arm.before), str(arm.after), str(arm.n), str(arm.successes),
            f"({arm.alpha}, {arm.beta})", f"{arm.posterior_mean:.4f}",
            "" if arm.p_best is None else f"{arm.p_best:.4f}",
            arm.status + (f": {arm.reason}" if arm.reason else ""),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``bandit`` to the ``release`` sub-app."""
    app.command("bandit")(bandit_command)
