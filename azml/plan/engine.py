"""Run the real Pulumi program in-process under mocks and record the plan.

This mirrors what the Pulumi language host does for ``pulumi preview``
(settings, config, ``run_in_stack`` on a fresh event loop), with our
recording monitor standing in for the engine. Each run happens in a fresh
``contextvars.Context`` so that two plans in one process do not share the
Pulumi runtime's ambient state (root stack, config).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import os
import runpy
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockSettings
from pulumi.runtime.stack import run_in_stack

from ..config import StackFile, validate_config
from ..config.secrets import STACK_FILE_ENV, secret_values
from ..errors import ProblemsError
from .mocks import AzureMocks, ClientConfig
from .model import Plan, PlannedResource
from .monitor import RecordingMonitor

log = logging.getLogger("azml.plan")


class ProgramError(RuntimeError):
    """The Pulumi program failed while being planned."""


class SecretLeakError(ProblemsError):
    """Secret config reached the engine unmarked; ``problems`` has one line per place."""


def _config_text(value: Any) -> str:
    """Config as the Pulumi CLI hands it to a program: scalars as text,
    structured values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _run_in_runtime(stack_file: StackFile, monitor: RecordingMonitor, program: Path) -> None:
    settings = MockSettings(
        monitor=monitor,
        monitor_features=set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures),
        engine=MockEngine(logging.getLogger("azml.plan.program")),
        project=stack_file.project,
        stack=stack_file.stack,
        dry_run=True,
        organization="organization",
        root_directory=str(stack_file.project_dir),
        callbacks=None,
    )
    pulumi_settings.configure(settings)
    pulumi_settings.ROOT.set(None)
    set_all_config(
        {key: _config_text(value) for key, value in stack_file.config.items()},
        list(stack_file.secret_keys),
    )

    def program_body() -> None:
        runpy.run_path(str(program), run_name="__main__")

    loop = asyncio.new_event_loop()
    # When a program fails, the runtime leaves sibling futures whose errors
    # are the same failure; asyncio would print each one's traceback when it
    # is garbage-collected. The failure itself is raised from run_in_stack.
    loop.set_exception_handler(lambda _loop, context: log.debug("suppressed: %s", context.get("message")))
    asyncio.set_event_loop(loop)
    added_path = str(stack_file.project_dir)
    sys.path.insert(0, added_path)
    try:
        loop.run_until_complete(run_in_stack(program_body))
    finally:
        sys.path.remove(added_path)
        for task in asyncio.all_tasks(loop):
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                loop.run_until_complete(task)
        loop.close()
        asyncio.set_event_loop(None)


def _run_without_cyclic_gc(stack_file: StackFile, monitor: RecordingMonitor, program: Path) -> None:
    """Run the program with CPython's cyclic garbage collector paused, then
    collect what the run allocated.

    A plan allocates tens of thousands of short-lived asyncio tasks and
    Outputs on top of a heap that holds the azure-native SDK; each time the
    collector's counters fill up it rescans that heap, which cost about two
    thirds of the program's time under mocks and grew faster than the plan
    (see docs/benchmarks.md). Reference counting frees almost all of it
    anyway; one collection of the youngest generation afterwards (where
    everything the paused run allocated still sits) picks up the cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        contextvars.Context().run(_run_in_runtime, stack_file, monitor, program)
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)  # only what the run allocated: a full collection rescans the SDKs (~0.5 s)


def _tree_order(records: list[PlannedResource]) -> list[PlannedResource]:
    """Depth-first, children sorted by (type, name): registration order depends
    on when outputs resolve, and a plan should diff cleanly between runs."""
    children: dict[str | None, list[PlannedResource]] = {}
    for record in records:
        children.setdefault(record.parent, []).append(record)
    ordered: list[PlannedResource] = []

    def visit(parent: str | None) -> None:
        for record in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            ordered.append(record)
            visit(record.urn)

    visit(None)
    return ordered


def run_plan(stack_file: StackFile, client: ClientConfig | None = None) -> Plan:
    """Plan ``stack_file``: validate its config (raising ``ConfigError``), then
    run ``__main__.py`` under mocks (raising ``ProgramError`` on failure, and
    ``SecretLeakError`` when a secret config value reaches a resource input,
    a resource name or a stack output unmarked).

    Config is handed over as the CLI hands it: values decrypted (offline a
    ``secure:`` value cannot be decrypted and is the placeholder ``[secret]``;
    tests pass real values), secret keys marked; the program learns which
    leaves are secret from the same stack file (``AZML_STACK_FILE``)."""
    validate_config(stack_file.namespace(), stack_file.project_dir)
    program = stack_file.project_dir / "__main__.py"
    secrets = secret_values(stack_file.config, stack_file.secret_keys, stack_file.stack_config)
    monitor = RecordingMonitor(AzureMocks(client), secrets)
    previous = os.environ.get(STACK_FILE_ENV)
    os.environ[STACK_FILE_ENV] = str(stack_file.path)
    try:
        _run_without_cyclic_gc(stack_file, monitor, program)
    except Exception as exc:  # noqa: BLE001 - reported as a one-line program error
        message = str(exc).strip() or type(exc).__name__
        raise ProgramError(f"{type(exc).__name__}: {message}") from exc
    finally:
        if previous is None:
            os.environ.pop(STACK_FILE_ENV, None)
        else:
            os.environ[STACK_FILE_ENV] = previous
    if monitor.leaks:
        raise SecretLeakError(sorted({leak.line() for leak in monitor.leaks}))
    return Plan(
        project=stack_file.project,
        stack=stack_file.stack,
        resources=_tree_order(monitor.records),
        outputs=dict(monitor.stack_outputs),
    )
