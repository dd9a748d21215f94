"""The two CrossGuard packs ``azml plan`` runs, as the Pulumi CLI would run them
with ``--policy-pack policies --policy-pack policies/platform``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pack:
    key: str  # its verdicts' key in plan.json
    directory: str  # relative to the project directory
    title: str

    def config_for(self, project_dir: Path, stack: str, environment: object) -> Path | None:
        """``<pack>/config.<stack>.json``, else the one of the stack's environment."""
        for name in (stack, environment):
            candidate = project_dir / self.directory / f"config.{name}.json"
            if isinstance(name, str) and candidate.is_file():
                return candidate
        return None


CHECKLIST = Pack("policy", "policies", "security checklist")
PLATFORM = Pack("platform", "policies/platform", "Azure platform rules")
PACKS = (CHECKLIST, PLATFORM)
