"""`azml plan` from any folder, with any --project-dir and any relative or
absolute --out: the same plan, written where asked, nothing stray, and no
path of the machine that produced it inside plan.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT

AZML = Path(sys.executable).parent / "azml"


def test_plan_from_another_folder_with_a_relative_out_writes_there_and_nowhere_else(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(AZML), "plan", "dev", "--project-dir", str(ROOT), "--out", "rel-out"],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "pulumi:pulumi:Stack" in result.stdout and "Wrote rel-out/dev/plan.json" in result.stdout
    written = sorted(p.relative_to(elsewhere).as_posix() for p in elsewhere.rglob("*"))
    assert written == [
        "rel-out", "rel-out/dev", "rel-out/dev/arm", "rel-out/dev/arm/template.json", "rel-out/dev/checkov.json",
        "rel-out/dev/checkov.sarif", "rel-out/dev/graph.mmd", "rel-out/dev/plan.json",
    ], written
    text = (elsewhere / "rel-out/dev/plan.json").read_text()
    for machine_path in (str(ROOT), str(tmp_path), str(Path.home())):
        assert machine_path not in text, machine_path
    plan = json.loads(text)
    assert plan["policy"]["config"] == "policies/config.dev.json"
    assert plan["platform"]["config"] == "policies/platform/config.dev.json"
