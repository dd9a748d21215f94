"""`azml drift`: the Azure ML model monitors' drift metrics of every feature of a
current sample against a reference (PSI, Jensen-Shannon, KS, normalized
Wasserstein, chi-squared; :mod:`azml.drift.metrics`).

Registered on the ``azml`` app as ``app.command("drift")(drift)``. With ``--stack``
the thresholds, minimum sample size and MLflow store are the stack's
(:mod:`azml.drift.settings`).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import EXIT_DRIFT, EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, CommandError, OutputFormat, TextJsonOrMarkdown, fail
from ..drift.defaults import DEFAULT_BINS, DEFAULT_CHUNK_ROWS, DEFAULT_PSI_LIMIT, PSI_LIMIT_RULE, psi_limit_problem

#: Upper bounds of --bins and --chunk-rows. The engine builds bins-1 quantile
#: ranks up front (--bins 1000000000 runs out of memory, 10**23 never ends), and
#: more bins than this only split a sample into noise; a chunk is held in memory.
MAX_BINS = 1000
MAX_CHUNK_ROWS = 100_000_000
#: The files --out receives.
REPORT_FILES = ("drift.json", "drift.md", "drift.html")
#: Too few rows in a sample to say (below the minimum sample size); as `azml retrain check`.
from ..errors import EXIT_INCONCLUSIVE  # noqa: E402,F401
#: Without --stack and --tracking-uri: a file in the current directory, named when written.
LOCAL_STORE = "sqlite:///mlruns.db"



def _features(values: list[str] | None) -> list[str] | None:
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    return names or None


def _out_problem(out: Path) -> str | None:
    """Why the report files cannot go into ``out``, or None: it must be a
    directory (or creatable as one) and hold no directory by a report's name."""
    if out.exists() and not out.is_dir():
        return "is a file, not a directory"
    for ancestor in out.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a file, not a directory"
            break
    for name in REPORT_FILES:
        if (out / name).is_dir():
            return f"{out / name} is a directory"
    return None


def drift(
    reference: Annotated[Path, typer.Option("--reference", "-r", help="Reference sample: CSV or Parquet file.", dir_okay=False)],
    current: Annotated[Path, typer.Option("--current", "-c", help="Current sample: CSV or Parquet file.", dir_okay=False)],
    features: Annotated[
        Optional[list[str]],
        typer.Option("--features", help="Features to compare, comma-separated or repeated (default: every reference column)."),
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold",
            help=f"Without --stack: a feature drifts when its PSI is above this ({PSI_LIMIT_RULE}; default {DEFAULT_PSI_LIMIT}). "
            "With --stack the thresholds are azml:modelMonitoring.dataDrift.thresholds.",
            show_default=False,
        ),
    ] = None,
    min_samples: Annotated[
        Optional[int],
        typer.Option(
            "--min-samples",
            help="Rows each sample needs, below which the result is INCONCLUSIVE (exit 5); default azml:release.minSamples.psi "
            "of --stack, else its default 500.",
            show_default=False,
        ),
    ] = None,
    bins: Annotated[int, typer.Option("--bins", help=f"Reference-quantile bins of numeric features (2..{MAX_BINS}).")] = DEFAULT_BINS,
    chunk_rows: Annotated[
        int,
        typer.Option(
            "--chunk-rows", help=f"Rows read at a time (1..{MAX_CHUNK_ROWS}); inputs no longer than this are processed in memory."
        ),
    ] = DEFAULT_CHUNK_ROWS,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for drift.json, drift.md and drift.html.")] = Path("build/drift"),
    output_format: TextJsonOrMarkdown = OutputFormat.text,
    tracking_uri: Annotated[
        Optional[str],
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (default: azml:release.metrics.trackingUri of --stack; without --stack "
            f"{LOCAL_STORE} in the current directory, named in the output).",
            show_default=False,
        ),
    ] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment of the drift run.")] = "azml-drift",
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the report as an MLflow run (kind=drift).")] = True,
    stack: Annotated[
        Optional[str],
        typer.Option("--stack", help="Stack (Pulumi.STACK.yaml): its monitors' thresholds, minimum sample size and MLflow store; tags the run."),
    ] = None,
    project_dir: Annotated[
        Optional[Path], typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).", file_okay=False)
    ] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Endpoint tag of the MLflow run and the report.")] = None,
    deployment: Annotated[Optional[str], typer.Option("--deployment", help="Deployment tag of the MLflow run and the report.")] = None,
    progress: Annotated[
        Optional[bool],
        typer.Option(
            "--progress/--no-progress",
            help="Progress of a streamed run on stderr (default: when stderr is a terminal; forced on, a line every 10 s).",
            show_default=False,
        ),
    ] = None,
    temp_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--temp-dir",
            help="Directory of the streamed run's unlinked temporary file, 8 bytes per numeric value (default: $TMPDIR or /tmp).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Compare a current sample with a reference, feature by feature.

    Compare a current sample with a reference, feature by feature, with the Azure
    ML model monitors' data drift metrics: PSI over the reference's quantile bins
    (categories for text and boolean columns), Jensen-Shannon distance, the
    two-sample KS test and normalized Wasserstein distance (numeric), Pearson's
    chi-squared test (categorical). Writes drift.json, drift.md and drift.html;
    exits 3 when a feature breaches a threshold, 5 when a sample is below the
    minimum sample size, 2 on bad input."""
    from ..drift.engine import compute_drift
    from ..drift.progress import ProgressLine
    from ..drift.reader import DriftInputError
    from ..drift.spill import SpillError, usable_directory
    from ..drift.output.report import to_html, to_json_text, to_markdown, to_text
    from ..progress import display_mode
    from ..files import write_atomically

    # Options first, before any input is read or anything written.
    if not 2 <= bins <= MAX_BINS:
        fail(EXIT_INVALID_INPUT, [f"--bins: {bins} is not in 2..{MAX_BINS}"])
    if not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        fail(EXIT_INVALID_INPUT, [f"--chunk-rows: {chunk_rows} is not in 1..{MAX_CHUNK_ROWS}"])
    if threshold is not None and (problem := psi_limit_problem(threshold)):  # NaN or inf would let every PSI pass
        fail(EXIT_INVALID_INPUT, [f"--threshold: {problem}"])
    if min_samples is not None and min_samples < 1:
        fail(EXIT_INVALID_INPUT, [f"--min-samples: {min_samples} is not a whole number >= 1"])
    from ..drift.settings import MIN_SAMPLES_KEY, THRESHOLDS_KEY, default_min_samples

    metric_thresholds = None
    store = tracking_uri
    if stack is not None:
        from ..config import ConfigError
        from ..drift.settings import from_stack

        if threshold is not None:
            fail(EXIT_INVALID_INPUT, [
                f"--threshold: with --stack the thresholds are the monitors' ({THRESHOLDS_KEY} in Pulumi.{stack}.yaml); drop one"
            ])
        try:
            settings = from_stack(stack, project_dir)
        except ConfigError as error:
            fail(EXIT_INVALID_INPUT, error.problems)
        metric_thresholds = settings.metric_thresholds
        minimum = settings.min_samples if min_samples is None else min_samples
        store = store or settings.tracking_uri
    else:
        minimum = default_min_samples() if min_samples is None else min_samples
    store = store or LOCAL_STORE
    problem = _out_problem(out)
    if problem:
        fail(EXIT_INVALID_INPUT, [f"--out {out}: {problem}; nothing was written"])
    if temp_dir is not None and (problem := usable_directory(temp_dir)):
        fail(EXIT_INVALID_INPUT, [f"--temp-dir {temp_dir}: {problem}; nothing was written"])
    uri = None
    created = None
    if log:
        from ..tracking import check_reachable, check_tracking_uri, resolve_tracking_uri

        try:
            uri = resolve_tracking_uri(store, Path.cwd())
            created = _local_file(uri)
            check_tracking_uri(uri)
            check_reachable(uri)  # an unreachable server is found before the report is written, not after
        except CommandError as error:
            fail(error.exit_code, [f"{error}; nothing was written"])

    # Progress goes to stderr only (stdout may be the JSON report): by default when
    # stderr is a terminal (and CI is not set, as for azml plan's phases), redrawn in
    # place; --progress forces it into logs as well.
    shown = ProgressLine(sys.stderr) if (display_mode(sys.stderr) is not None if progress is None else progress) else None
    try:
        report = compute_drift(
            reference,
            current,
            features=_features(features),
            default_threshold=DEFAULT_PSI_LIMIT if threshold is None else threshold,
            metric_thresholds=metric_thresholds,
            min_samples=minimum,
            bins=bins,
            chunk_rows=chunk_rows,
            progress=shown,
            temp_dir=temp_dir,
        )
    except DriftInputError as error:
        fail(EXIT_INVALID_INPUT, [str(error)])
    except SpillError as error:
        fail(EXIT_PROGRAM_ERROR, [f"{error}; nothing was written"])
    finally:
        if shown is not None:
            shown.close()
    metadata: dict[str, str] = {"generatedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    for key, value in (("stack", stack), ("endpoint", endpoint), ("deployment", deployment)):
        if value:
            metadata[key] = value
    text = to_json_text(report, metadata)
    html = to_html(report)
    markdown = to_markdown(report)
    try:
        for name, content in zip(REPORT_FILES, (text, markdown, html)):
            write_atomically(out / name, content)
    except OSError as error:
        fail(EXIT_INVALID_INPUT, [f"--out {out}: cannot write ({error.strerror or error})"])
    run_id = None
    if uri is not None:
        from ..tracking import first_line, store_errors
        from ..drift.output.mlflow_log import log_report

        try:
            with store_errors(uri):
                run_id = log_report(
                    report, uri, experiment, stack=stack, endpoint=endpoint, deployment=deployment, metadata=metadata, html=html
                )
        except CommandError as error:
            fail(error.exit_code, [f"wrote the report to {out} but could not log it: {error}"])
        except Exception as error:  # noqa: BLE001 - the store's own errors are reported, not a traceback
            fail(EXIT_PROGRAM_ERROR, [f"wrote the report to {out} but could not log it to MLflow at {store}: {first_line(error)}"])

    if output_format is OutputFormat.json:
        sys.stdout.write(text)
    elif output_format is OutputFormat.markdown:
        sys.stdout.write(markdown)
    else:
        typer.echo(to_text(report), nl=False)
        typer.echo(f"\nWrote {out / 'drift.json'}, {out / 'drift.md'} and {out / 'drift.html'}")
    if run_id:
        # Always said, on stderr when stdout is a document: where the run went.
        where = f"Logged MLflow run {run_id} (experiment {experiment}) to {_display(uri, created)}"
        typer.echo(where, err=output_format is not OutputFormat.text)
    if report.drifted:
        names = ", ".join(f"{f.name} ({'; '.join(f.breaches)})" for f in report.features if f.drifted)
        fail(EXIT_DRIFT, [f"drift in {len(report.drifted)} feature(s): {names}"])
    if report.inconclusive:
        rows = report.features[0]
        fail(EXIT_INCONCLUSIVE, [
            f"INCONCLUSIVE: {rows.n_reference} reference and {rows.n_current} current rows, fewer than the {minimum} "
            f"required ({'--min-samples' if min_samples is not None else MIN_SAMPLES_KEY if stack else '--min-samples default'}); "
            "no feature is reported as drifted or not"
        ])


def _local_file(uri: str | None) -> bool | None:
    """For a local sqlite store: whether its file is yet to be created; else None."""
    prefix = "sqlite:///"
    if uri and uri.startswith(prefix):
        return not Path(uri[len(prefix):]).exists()
    return None


def _display(uri: str, created: bool | None) -> str:
    from ..tracking import display_uri

    if created is None:
        return display_uri(uri)
    return f"{uri[len('sqlite:///'):]}" + (" (created)" if created else "")
