"""The day-two simulation's second plan, made in a forked child beside the first
(azml/plan/forked.py): the same report as planned in-process, and nothing lost
when the child fails, dies or is not wanted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from azml.config import read_stack_file
from azml.plan.daytwo import simulate
from azml.plan.engine import run_plan
from azml.plan.forked import Forked
from azml.plan.model import Plan

from ..conftest import ROOT

# Run as `azml plan` runs it: a process with no other thread, where a child is forked.
FORKED_DAY_TWO = f"""
import json
from pathlib import Path
from azml.config import read_stack_file
from azml.plan import forked
from azml.plan.daytwo import compare, start_before
from azml.plan.engine import run_plan

stack = read_stack_file("prod", Path({str(ROOT)!r}))
can_fork = forked.can_fork()
started = start_before(stack, run_plan)
after = run_plan(stack)
before = started.result() if started is not None else None
print(json.dumps({{"canFork": can_fork, "delivered": before is not None,
                  "report": compare(before, after).to_json() if before is not None else None}}))
"""


def test_the_forked_plan_gives_the_report_of_the_in_process_one(prod_plan: Plan) -> None:
    result = subprocess.run([sys.executable, "-c", FORKED_DAY_TWO], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    forked = json.loads(result.stdout.strip().splitlines()[-1])
    assert forked["canFork"] and forked["delivered"]
    in_process = simulate(read_stack_file("prod", ROOT), prod_plan, run_plan).to_json()
    assert forked["report"] == in_process
    assert any(op["deletes"] for op in in_process["operations"])  # the comparison has something to compare


def _fails() -> None:
    raise RuntimeError("the child's plan failed")


def _dies() -> None:
    os._exit(3)


def _sleeps() -> str:
    time.sleep(60)
    return "late"


def test_a_child_that_fails_or_dies_delivers_nothing_and_the_caller_plans_itself() -> None:
    assert Forked(_fails).result() is None
    assert Forked(_dies).result() is None
    assert Forked(sum, [1, 2, 3]).result() == 6


def test_an_unwanted_child_is_stopped_and_reaped_at_once() -> None:
    child = Forked(_sleeps)
    began = time.monotonic()
    child.cancel()
    assert time.monotonic() - began < 10
    assert child.result() is None  # nothing comes after a cancel
    try:
        os.kill(child._pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"the child {child._pid} still exists")


def test_no_child_is_forked_beside_another_thread() -> None:
    """A forked child inherits other threads' locks held and none of the threads."""
    script = (
        "import threading, time\n"
        "from azml.plan.forked import can_fork\n"
        "alone = can_fork()\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "print(alone, can_fork())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.split() == ["True", "False"], result.stderr
