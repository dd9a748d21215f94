"""``azml release attribution``: compare champion and canary models' top
features by mean |SHAP| and log the result for the verdict.

Exit codes: 0 the overlap passes; 1 it fails (or the run could not be
logged); 2 bad input (unknown stack, endpoint or deployment, an unreadable
sample, a model that cannot be loaded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, ProjectDir, TextOrJson, TrackingUri, fail


def default_canary(traffic: dict[str, int], mirror_traffic: dict[str, int]) -> str | None:
    """The deployment under release: the one mirror target, else the live
    deployment with the smallest share beside others; None when unclear."""
    mirrored = [n for n, share in mirror_traffic.items() if share > 0]
    if len(mirrored) == 1:
        return mirrored[0]
    live = sorted((share, n) for n, share in traffic.items() if share > 0)
    if len(live) >= 2 and live[0][0] < live[1][0]:
        return live[0][1]
    return None


def attribution_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint (short name).")],
    champion_model: Annotated[str, typer.Option("--champion-model", help="MLflow model URI (models:/name/1, runs:/id/model).")],
    canary_model: Annotated[str, typer.Option("--canary-model", help="MLflow model URI of the canary's model.")],
    sample: Annotated[Path, typer.Option("--sample", help="CSV or Parquet rows to explain (capped at sampleRows).")],
    canary: Annotated[
        Optional[str],
        typer.Option("--canary", help="Canary deployment (default: the mirror target, else the smaller live share)."),
    ] = None,
    output_format: TextOrJson = OutputFormat.text,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Compare both models' SHAP feature attributions.

    Explain both models on the sample with SHAP, compare the top-N
    features by mean |SHAP| (share of the champion's top N in the canary's)
    against minOverlap, and log the comparison to MLflow for the verdict."""
    from ...config.releases.attribution import AttributionConfig
    from ...release.evidence.attribution import AttributionError, compare
    from ..common import resolve_endpoint, tracking_store

    stack_file, config, declared = resolve_endpoint(stack, endpoint, project_dir)
    names = [d.name for d in declared.deployments]
    canary = canary or default_canary(declared.traffic, declared.mirror_traffic)
    if canary is None:
        fail(EXIT_INVALID_INPUT, [f"--canary: cannot tell the canary of {endpoint} from its split; name one of {', '.join(names)}"])
    if canary not in names:
        fail(EXIT_INVALID_INPUT, [f"--canary: {canary!r} is not a deployment of {endpoint} (declared: {', '.join(names)})"])
    if not sample.is_file():
        fail(EXIT_INVALID_INPUT, [f"--sample: no file {sample}"])
    store = tracking_store(config, stack_file.project_dir, tracking_uri)
    settings = config.release.attribution or AttributionConfig()  # the command runs with defaults; the gate only when configured
    try:
        result = compare(
            stack=stack_file.stack, endpoint=endpoint, canary=canary, champion_model=champion_model,
            canary_model=canary_model, sample_path=sample, config=settings,
            tracking_uri=store[0], experiment=store[1],
        )
    except AttributionError as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    except Exception as error:  # the tracking store refused the run
        fail(EXIT_PROGRAM_ERROR, [f"cannot log the attribution run: {str(error).splitlines()[0]}"])
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print(result)
    if not result.passed:
        raise typer.Exit(1)


def _print(result: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from ...release.evidence.attribution import Attribution

    assert isinstance(result, Attribution)
    console = Console(width=120)
    verdict = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
    console.print(
        f"{verdict} attributionOverlap {result.overlap:.2f} (min {result.min_overlap:g}) for {result.canary} "
        f"on {result.endpoint} ({result.stack}), top {result.top_n} by mean |SHAP| over {result.rows} rows"
    )
    table = Table("rank", "champion feature", "mean |SHAP|", "canary feature", "mean |SHAP|", "shared")
    shared = set(result.champion_top) & set(result.canary_top)
    for rank in range(result.top_n):
        a = result.champion_top[rank] if rank < len(result.champion_top) else ""
        b = result.canary_top[rank] if rank < len(result.canary_top) else ""
        table.add_row(
            str(rank + 1), a, f"{result.champion_importance[a]:.4g}" if a else "", b,
            f"{result.canary_importance[b]:.4g}" if b else "", "yes" if a in shared else "",
        )
    console.print(table)
    console.print(f"champion {result.champion_model} vs canary {result.canary_model}; logged to MLflow run {result.run_id}")


def register(app: typer.Typer) -> None:
    """Add ``attribution`` to the ``release`` sub-app."""
    app.command("attribution")(attribution_command)
