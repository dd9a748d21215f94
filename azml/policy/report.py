"""Policy verdicts of one plan: what ``azml plan`` prints and stores."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unspecified")


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str
    message: str
    enforcement: str  # advisory | mandatory | remediate
    severity: str
    description: str = ""
    remediation: str = ""

    @property
    def resource(self) -> str:
        """``type::name`` from the URN, or the stack for stack-wide findings."""
        if not self.urn:
            return "(stack)"
        parts = self.urn.split("::")
        return f"{parts[-2].split('$')[-1]}::{parts[-1]}"


@dataclass
class PolicyReport:
    pack: str
    version: str
    config: str | None
    policies: dict[str, str]  # name -> effective enforcement level
    violations: list[Violation] = field(default_factory=list)
    resources_analyzed: int = 0
    #: Pack start-up and evaluation wall time, for benchmarks (not stored in plan.json).
    timings: dict[str, float] = field(default_factory=dict)
    #: Each policy's effective ``exemptResources`` (risk acceptances), by policy name.
    exemptions: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    def by_severity(self) -> list[tuple[str, list[Violation]]]:
        groups = [(s, [v for v in self.violations if v.severity == s]) for s in SEVERITY_ORDER]
        return [(s, vs) for s, vs in groups if vs]

    def lines(self) -> list[str]:
        enabled = sum(1 for level in self.policies.values() if level != "disabled")
        lines = [
            f"Policy pack {self.pack} {self.version}: {enabled} {'policy' if enabled == 1 else 'policies'} enforced on "
            f"{self.resources_analyzed} resources ({self.config or 'default config'})"
        ]
        if not self.violations:
            return lines + ["    no violations"]
        for severity, violations in self.by_severity():
            lines.append(f"  {severity.upper()} ({len(violations)})")
            for v in sorted(violations, key=lambda v: (v.enforcement != "mandatory", v.policy, v.urn)):
                lines.append(f"    [{v.enforcement}] {v.policy} on {v.resource}: {v.message}")
                if v.remediation:
                    lines.append(f"        fix: {v.remediation}")
        counts = Counter(v.enforcement for v in self.violations)
        lines.append(f"  {counts['mandatory']} mandatory, {counts['advisory']} advisory")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "version": self.version,
            "config": self.config,
            "policies": self.policies,
            "resourcesAnalyzed": self.resources_analyzed,
            "violations": [asdict(v) | {"resource": v.resource} for v in self.violations],
            "summary": {
                "mandatory": len(self.mandatory),
                "advisory": sum(1 for v in self.violations if v.enforcement == "advisory"),
            },
        }
