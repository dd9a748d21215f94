"""The ``azml`` command."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .drift import drift
from .common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, ErrorGroup, OutputFormat, TextOrJson, fail as _fail
from ..files import write_atomically
from ..progress import TIMINGS_ENV, Phases, timings_document
from .config import config_app
from .env import env_app
from .lineage import lineage
from .release.app import release_app
from .retrain import retrain_app

app = typer.Typer(
    # Every command (retrain, lineage, drift, ...) ends a CommandError with its one line, never a traceback.
    cls=ErrorGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A secure Azure Machine Learning platform as code.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"azml {version('azml')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print azml's version and exit."),
    ] = False,
) -> None:
    """Subcommands: plan, checkov, release, drift, retrain, lineage, env, config."""


app.add_typer(release_app, name="release")
app.command("drift")(drift)
app.add_typer(retrain_app, name="retrain")
app.command("lineage")(lineage)
app.add_typer(env_app, name="env")
app.add_typer(config_app, name="config")


@app.command()
def plan(
    ctx: typer.Context,
    stack: Annotated[str, typer.Argument(help="Stack name (reads Pulumi.STACK.yaml) or path to a stack config file.")],
    output_format: TextOrJson = OutputFormat.text,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for <stack>/plan.json and graph.mmd.")] = Path(
        "build"
    ),
    project_dir: Annotated[
        Optional[Path], typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).")
    ] = None,
    policy_config: Annotated[
        Optional[Path],
        typer.Option("--policy-config", help="Policy pack config (default: policies/config.<stack or environment>.json)."),
    ] = None,
    policy: Annotated[
        bool, typer.Option("--policy/--no-policy", help="Run the policy packs (checklist, Azure platform rules) over the plan.")
    ] = True,
    day_two: Annotated[
        bool,
        typer.Option(
            "--day-two/--no-day-two",
            help="Simulate removing a canary deployment and replacing a persona role assignment against the stack's locks.",
        ),
    ] = True,
    checkov: Annotated[
        bool, typer.Option("--checkov/--no-checkov", help="Export the plan as an ARM template and run checkov on it.")
    ] = True,
) -> None:
    """Plan a stack offline under mocks, with policies and checkov.

    Offline plan: run the Pulumi program in-process under mocks and record
    every resource it would create, then run the security checklist and the
    Azure platform-rules policy packs over it, show its deploy sequence,
    simulate the day-two operations against its locks, and run checkov over
    its ARM export, without the Pulumi CLI or Azure. Lists every risk the
    stack accepts (policy exemptions, checkov skips) with its reason and
    expiry date. Exit 1 on a mandatory policy violation, a blocked day-two
    operation, a failed (not skipped) checkov check or an expired risk
    acceptance."""
    from ..config import ConfigError, read_stack_file
    from ..plan.daytwo import DayTwoError, simulate, start_before
    from ..plan.engine import ProgramError, SecretLeakError, run_plan
    from ..plan.render import mermaid, summary_lines, tree_lines
    from ..plan.sequence import DependencyCycle, creation_waves
    from ..arm.skips import SKIPS
    from ..policy.acceptances import Ledger, from_pack_properties, from_skips
    from ..policy.pack_config import PackConfigError
    from ..policy.packs import PACKS
    from ..policy.runner import PolicyRunError, evaluate_all

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        stack_file = read_stack_file(stack, project_dir)
    except ConfigError as error:
        _fail(EXIT_INVALID_INPUT, error.problems)
        return
    # The day-two simulation's second plan starts beside the first, in a child forked
    # before any thread (the progress line's) runs.
    started = start_before(stack_file, run_plan) if day_two else None
    if started is not None:
        ctx.call_on_close(started.cancel)  # a failure before the simulation leaves no child behind
    phases = Phases("azml plan").for_command(ctx)  # on a terminal only: stdout and logs stay as they are
    try:
        phases.start("Pulumi program under mocks")
        result = run_plan(stack_file)
    except ConfigError as error:
        _fail(EXIT_INVALID_INPUT, error.problems)
        return
    except ProgramError as error:
        _fail(EXIT_PROGRAM_ERROR, [f"the Pulumi program failed: {error}"])
        return
    except SecretLeakError as error:
        _fail(EXIT_PROGRAM_ERROR, error.problems)
        return

    document = result.to_json()
    try:
        sequence = creation_waves(result)
        if day_two:
            phases.start("day-two simulation")
        days = simulate(stack_file, result, run_plan, started) if day_two else None
    except (DependencyCycle, DayTwoError) as error:
        _fail(EXIT_PROGRAM_ERROR, [str(error)])
        return
    except ProgramError as error:
        _fail(EXIT_PROGRAM_ERROR, [f"the Pulumi program failed in the day-two simulation: {error}"])
        return
    document["deploySequence"] = sequence.to_json(result)
    if days is not None:
        document["dayTwo"] = days.to_json()

    reports = []
    environment = stack_file.namespace().get("environment")
    accepted = []  # risk acceptances: the packs' exemptions, then the checkov skips
    if policy:
        runs = []
        for pack in PACKS:
            config_path = pack.config_for(stack_file.project_dir, stack_file.stack, environment)
            if pack is PACKS[0] and policy_config is not None:
                config_path = policy_config
            runs.append((stack_file.project_dir / pack.directory, config_path))
        # the packs run side by side: one phase naming both
        phases.start("policy packs: " + ", ".join(pack.title for pack in PACKS))
        try:
            pack_reports = evaluate_all(result, runs)
        except PackConfigError as error:
            _fail(EXIT_INVALID_INPUT, error.problems)
            return
        except PolicyRunError as error:
            _fail(EXIT_PROGRAM_ERROR, [str(error)])
            return
        for pack, report in zip(PACKS, pack_reports):
            document[pack.key] = report.to_json()
            reports.append(report)
            accepted += from_pack_properties(pack.key, {k: {"exemptResources": v} for k, v in report.exemptions.items()})
    if checkov:
        accepted += from_skips(SKIPS, environment if isinstance(environment, str) else None)
    ledger = Ledger(accepted)
    document["riskAcceptances"] = ledger.to_json()

    target = out / result.stack
    scan = None
    if checkov:
        from ..arm.bridge import export_and_scan
        from ..arm.checkov import CheckovError
        from ..plan.arm import UnknownResourceType

        try:
            scan = export_and_scan(result, target, stack_file=stack_file.path, on_phase=phases.start)
        except (CheckovError, UnknownResourceType) as error:
            _fail(EXIT_PROGRAM_ERROR, [str(error).strip().splitlines()[0]])
            return
        document["checkov"] = scan.to_json()

    phases.close()
    if os.environ.get(TIMINGS_ENV):
        packs = {pack.key: report.timings for pack, report in zip(PACKS, reports)}
        write_atomically(Path(os.environ[TIMINGS_ENV]), json.dumps(timings_document(phases, packs), indent=2) + "\n")
    text = json.dumps(document, indent=2) + "\n"
    write_atomically(target / "plan.json", text)
    write_atomically(target / "graph.mmd", mermaid(result))
    mandatory = sum(len(r.mandatory) for r in reports)

    if output_format is OutputFormat.json:
        sys.stdout.write(text)
    else:
        typer.echo(f"Offline plan of stack {result.project}/{result.stack} (no Azure calls; outputs mocked)\n")
        for line in tree_lines(result):
            typer.echo(line)
        typer.echo("")
        for line in summary_lines(result):
            typer.echo(line)
        for report in reports:
            typer.echo("")
            for line in report.lines():
                typer.echo(line)
        typer.echo("")
        for line in ledger.lines():
            typer.echo(line)
        typer.echo("")
        for line in sequence.lines(result):
            typer.echo(line)
        if days is not None:
            typer.echo("")
            for line in days.lines():
                typer.echo(line)
        if scan is not None:
            typer.echo("")
            for line in scan.summary_lines():
                typer.echo(line)
        typer.echo(f"\nWrote {target / 'plan.json'} and {target / 'graph.mmd'}")
    problems = []
    if mandatory:
        problems.append(f"{mandatory} mandatory policy violation(s)")
    if days is not None and days.blocked:
        problems.append(f"{len(days.blocked)} day-two operation(s) blocked by the stack's locks")
    if scan is not None and not scan.ok:
        problems.extend(scan.failure_lines())
    problems.extend(ledger.failure_lines())
    if problems:
        _fail(EXIT_PROGRAM_ERROR, problems)


@app.command()
def checkov(
    preview_json: Annotated[
        Optional[Path],
        typer.Option("--preview-json", help="Output of `pulumi preview --json` to scan.", dir_okay=False),
    ] = None,
    plan_json: Annotated[
        Optional[Path],
        typer.Option("--plan-json", help="A plan.json written by `azml plan` to scan.", dir_okay=False),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Directory for arm/template.json and checkov.sarif (default: build/<stack>)."),
    ] = None,
) -> None:
    """Export a preview or plan as ARM and scan it with checkov.

    Exports it as an ARM template, scans that with checkov and writes
    DIR/arm/template.json, DIR/checkov.sarif and DIR/checkov.json; exits 1
    when a check fails that the curated skip list (azml.arm.skips) does not
    cover, or when a skip of the list is past its expiry date."""
    from ..arm.api_versions import ApiVersionError
    from ..arm.bridge import environment_of, export_and_scan
    from ..arm.skips import SKIPS
    from ..policy.acceptances import Ledger, from_skips
    from ..arm.checkov import CheckovError
    from ..arm.preview import PlanDocumentError, plan_from_plan_json, plan_from_preview
    from ..jsonfile import JsonInputError, read_json
    from ..plan.arm import UnknownResourceType

    if (preview_json is None) == (plan_json is None):
        _fail(EXIT_INVALID_INPUT, ["give exactly one of --preview-json FILE or --plan-json FILE"])
        return
    source = preview_json if preview_json is not None else plan_json
    option = "--preview-json" if preview_json is not None else "--plan-json"
    try:
        document = read_json(source)
        result = plan_from_preview(document) if preview_json is not None else plan_from_plan_json(document)
    except JsonInputError as error:  # undecodable, NaN, duplicate keys, too deep, too big: one line naming the file
        _fail(EXIT_INVALID_INPUT, [f"{option}: {error}"])
        return
    except OSError as error:
        _fail(EXIT_INVALID_INPUT, [f"{option}: cannot read {source}: {error.strerror or error}"])
        return
    except ValueError as error:  # JSON syntax and PlanDocumentError alike
        detail = str(error) if isinstance(error, PlanDocumentError) else f"not JSON ({error})"
        _fail(EXIT_INVALID_INPUT, [f"{option}: {source}: {detail}"])
        return
    target = out if out is not None else Path("build") / (result.stack or "checkov")
    try:
        report = export_and_scan(result, target)
    except (CheckovError, ApiVersionError, UnknownResourceType) as error:
        _fail(EXIT_PROGRAM_ERROR, [str(error.args[0]) if error.args else str(error)])
        return
    counts = report.summary()
    typer.echo(
        f"checkov {report.checkov_version} on {result.project}/{result.stack}: {counts['resources']} resources, "
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped (documented)"
    )
    typer.echo(f"Wrote {target / 'arm' / 'template.json'}, {report.sarif} and {target / 'checkov.json'}")
    # The skips are risk acceptances: one past its date fails the scan as it fails azml plan.
    expired = Ledger(from_skips(SKIPS, environment_of(result))).failure_lines()
    if not report.ok or expired:
        _fail(EXIT_PROGRAM_ERROR, [*(report.failure_lines() if not report.ok else []), *expired])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
