"""``azml release advance``: apply the last verdict to the stack file.

Order of events, each a point where the run may stop without changing
traffic: the stack is loaded and validated; the newest verdict of the
endpoint is read from MLflow (so every verdict reaches MLflow before any
traffic moves); it is refused when missing, stale, or naming deployments the
endpoint no longer declares; HOLD ends here with nothing to apply; the
ladder gives the next split; :func:`azml.release.traffic.stackedit.rewrite_traffic`
takes the stack file's lock, refuses a file that changed since the verdict,
writes and validates the new file, records the change in MLflow (a ``traffic``
run naming the verdict run) and only then replaces the file, then tags the run
``azml.applied``. Before any of that, a change a killed run recorded but never
tagged is settled from the stack file (:func:`azml.release.store.settle_changes`).
``pulumi up`` applies the file to Azure, run by hand or with ``--up`` through
Pulumi's Automation API.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...config import StackFile
from ... import tracking
from .ladder import LadderError, Move, next_split
from ..target import (  # noqa: F401  (the floor's names, as advance has always exported them)
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_PROGRAM_ERROR,
    EXIT_REFUSED,
    AdvanceError,
    Target,
    _minutes,
    load_target,
    missing_sqlite_store,
    verdict_age,
)
from ..evidence.verdict import Decision, Verdict, utc_now

#: Tag of a traffic run: "true" once the stack file was replaced.
TAG_APPLIED = tracking.TAG_APPLIED


class PulumiMissing(AdvanceError):
    def __init__(self, problems: list[str]):
        super().__init__(EXIT_REFUSED, problems)


@dataclass
class AdvanceResult:
    target: Target
    verdict: Verdict
    move: Move | None  # None for HOLD
    applied: bool
    message: str
    diff: list[str] = field(default_factory=list)
    traffic_run_id: str | None = None
    pulumi_command: list[str] = field(default_factory=list)


def pulumi_up_command(stack: str, project_dir: Path, cwd: Path | None = None) -> list[str]:
    """The ``pulumi up`` that applies the rewritten stack file."""
    command = ["pulumi", "up", "--stack", stack]
    if project_dir.resolve() != (cwd or Path.cwd()).resolve():
        command += ["--cwd", str(project_dir)]
    return command


def command_text(command: list[str]) -> str:
    return shlex.join(command)


def advance(
    stack: str,
    endpoint: str,
    *,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    now: dt.datetime | None = None,
    before_replace: Callable[[], None] | None = None,
    after_replace: Callable[[], None] | None = None,
    on_settled: Callable[[str], None] | None = None,
) -> AdvanceResult:
    """Apply the newest verdict of ``stack``/``endpoint`` to the stack file.
    Raises :class:`AdvanceError` (exit 1 refused, exit 2 bad input); returns
    the result otherwise, ``applied`` False when there was nothing to apply.
    ``before_replace`` runs just before the file is replaced and
    ``after_replace`` just after, before the change is tagged applied (tests
    use them to stop a run mid-write). ``on_settled`` gets one line per
    change of a killed run that this run marked."""
    from .. import store
    from .stackedit import StackEditError, rewrite_traffic

    stack_file, config, uri, experiment_name = load_target(
        stack, endpoint, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
    )
    target = Target(stack_file, config, endpoint, uri, experiment_name)
    if endpoint in config.release.bandits:  # bandit mode: `azml release bandit` sets this split, never the ladder
        raise AdvanceError(EXIT_REFUSED, [f"{endpoint} is in bandit mode (azml:release.bandits.{endpoint}): its traffic is set by `azml release bandit {stack_file.stack} --endpoint {endpoint}`, not by the ladder; remove it from azml:release.bandits to walk the ladder"])
    where = f"experiment {experiment_name!r} of {uri}"

    if missing_sqlite_store(uri) is not None:
        raise AdvanceError(
            EXIT_REFUSED,
            [
                f"no verdict for {stack_file.stack}/{endpoint}: there is no tracking store at {uri}; "
                f"run `azml release evaluate {stack_file.stack} --endpoint {endpoint}` first"
            ],
        )
    settle(uri, experiment_name, stack_file, on_settled)
    try:
        verdict = store.last_verdict(uri, experiment_name, stack_file.stack, endpoint)
    except Exception as error:  # StoreError, or the store unreachable
        raise AdvanceError(EXIT_REFUSED, [f"cannot read the last verdict from {where}: {error}"]) from None
    if verdict is None:
        raise AdvanceError(
            EXIT_REFUSED,
            [
                f"no verdict for {stack_file.stack}/{endpoint} in {where}; "
                f"run `azml release evaluate {stack_file.stack} --endpoint {endpoint}` first"
            ],
        )
    age = verdict_age(verdict, now)
    if verdict.decision is Decision.HOLD:
        return AdvanceResult(
            target,
            verdict,
            None,
            False,
            f"nothing to apply: the last verdict (computed at {verdict.computed_at}, {_minutes(age)} ago) "
            f"is HOLD for {verdict.canary}; the split stays {target.split.text()}",
        )
    max_age = dt.timedelta(minutes=config.release.verdict_max_age_minutes)
    if age > max_age:
        raise AdvanceError(
            EXIT_REFUSED,
            [
                f"the last verdict ({verdict.decision.value}, computed at {verdict.computed_at}) is {_minutes(age)} old, "
                f"older than verdictMaxAgeMinutes ({config.release.verdict_max_age_minutes}); "
                f"run `azml release evaluate {stack_file.stack} --endpoint {endpoint}` again"
            ],
        )
    missing = [
        f"the verdict's {role} {name} is no longer a deployment of {endpoint} "
        f"(declared: {', '.join(target.deployments)}); run `azml release evaluate` again"
        for role, name in (("champion", verdict.champion), ("canary", verdict.canary))
        if name not in target.deployments
    ]
    if missing:
        raise AdvanceError(EXIT_REFUSED, missing)

    try:
        move = next_split(
            target.split,
            champion=verdict.champion,
            canary=verdict.canary,
            ladder=config.release.ladder,
            decision=verdict.decision,
            deployments=target.deployments,
        )
    except LadderError as error:
        raise AdvanceError(EXIT_REFUSED, error.problems) from None
    if not move.changed:
        return AdvanceResult(target, verdict, move, False, f"nothing to apply: {move.summary}")
    # Error-budget freeze: a promotion spends reliability the month no longer
    # has; a rollback restores it, so only PROMOTE is checked (and can be refused).
    budget_note = None
    if verdict.decision is Decision.PROMOTE:
        from ..evidence.budget import check_promotion

        budget_note = check_promotion(config, stack_file.stack, uri, experiment_name, now or utc_now())

    recorded: dict[str, str] = {}

    def record(new_sha256: str) -> None:
        try:
            recorded["run_id"] = store.log_traffic_change(
                uri,
                experiment_name,
                stack=stack_file.stack,
                endpoint=endpoint,
                verdict_run_id=verdict.run_id,
                before=move.before.as_config(),
                after=move.after.as_config(),
                stack_file_sha256=new_sha256,
                project_dir=stack_file.project_dir,
            )
        except Exception as error:
            raise AdvanceError(
                EXIT_REFUSED,
                [f"cannot record the traffic change in {where}: {error}; {stack_file.path.name} was not changed"],
            ) from None
        if before_replace is not None:
            before_replace()

    try:
        edit = rewrite_traffic(
            stack_file.path,
            endpoint,
            move.after.traffic,
            move.after.mirror_traffic,
            expected_sha256=verdict.stack_file_sha256,
            computed_at=verdict.computed_at,
            project_dir=stack_file.project_dir,
            project=stack_file.project,
            before_replace=record,
        )
    except BaseException as error:
        if "run_id" in recorded:  # recorded, then the replace failed: say so in the audit trail
            tracking.mark_applied(uri, recorded["run_id"], False)
        if isinstance(error, StackEditError):
            raise AdvanceError(edit_error_code(error), error.problems) from None
        raise
    if after_replace is not None:
        after_replace()
    tracking.mark_applied(uri, recorded["run_id"], True)
    return AdvanceResult(
        target,
        verdict,
        move,
        True,
        move.summary + (f"\n{budget_note}" if budget_note else ""),
        diff=edit.diff,
        traffic_run_id=recorded.get("run_id"),
        pulumi_command=pulumi_up_command(stack_file.stack, stack_file.project_dir),
    )


def edit_error_code(error: Exception) -> int:
    """Exit code of a refused stack-file write: the file system refusing it
    is a failure of the run (cliutil's program error), anything else — lock
    held, file changed or read-only, an edit that would not validate — a
    refusal."""
    from .stackedit import WriteFailed

    return EXIT_PROGRAM_ERROR if isinstance(error, WriteFailed) else EXIT_REFUSED


def settle(uri: str, experiment: str, stack_file: StackFile, on_settled: Callable[[str], None] | None = None) -> None:
    """Before a write: mark the changes of killed runs from the stack file
    (:func:`azml.release.store.settle_changes`), under the file's lock."""
    from .. import store
    from .stackedit import StackEditError

    try:
        settled = store.settle_changes(uri, experiment, stack_file)
    except StackEditError as error:
        raise AdvanceError(edit_error_code(error), error.problems) from None
    except Exception as error:  # the store unreachable
        raise AdvanceError(
            EXIT_REFUSED,
            [f"cannot read the release audit trail in experiment {experiment!r} of {uri}: {str(error).splitlines()[0]}"],
        ) from None
    for item in settled:
        if on_settled is not None:
            on_settled(item.text())


def find_pulumi() -> str | None:
    """The Pulumi CLI the Automation API would run (``pulumi`` on PATH)."""
    return shutil.which("pulumi")


def run_pulumi_up(stack: str, project_dir: Path, on_output: Callable[[str], None] = print) -> str:
    """``pulumi up`` of ``stack`` through the Automation API; returns the
    update's result (``succeeded``). Raises :class:`PulumiMissing` without
    the CLI and :class:`AdvanceError` when the update fails."""
    if find_pulumi() is None:
        raise PulumiMissing(
            [
                "--up needs the Pulumi CLI (https://www.pulumi.com/docs/install/), which is not on PATH; "
                f"the stack file was already updated: run `{command_text(pulumi_up_command(stack, project_dir))}`"
            ]
        )
    from pulumi import automation as auto

    try:
        selected = auto.select_stack(stack_name=stack, work_dir=str(project_dir))
        result = selected.up(on_output=on_output)
    except auto.CommandError as error:
        raise AdvanceError(
            EXIT_REFUSED,
            [f"pulumi up --stack {stack} failed (the stack file is already updated): {str(error).strip()[-2000:]}"],
        ) from None
    outcome = getattr(result.summary, "result", "succeeded")
    if outcome not in ("succeeded", None):
        raise AdvanceError(EXIT_REFUSED, [f"pulumi up --stack {stack} ended with {outcome}"])
    return str(outcome)
