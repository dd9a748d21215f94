"""PSRule for Azure parity: the mapping in policies/psrule.yaml and the page
docs/psrule.md generated from it.

Every PSRule rule whose resource type the stacks deploy has one row: enforced
by named checks (policies of either pack, checkov ids), accepted (a named
policy enforces it, and a stack's pack config carries a dated risk acceptance
for the resources that do not meet it yet), planned (the policy that will
enforce it), or not applicable with the reason.
``python -m azml.policy.psrule`` (run by ``make docs``) rewrites the page; a
test fails when it is out of date.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..files import write_atomically

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "policies" / "psrule.yaml"
PAGE = ROOT / "docs" / "psrule.md"
STATUSES = ("enforced", "accepted", "planned", "not-applicable")
SEVERITIES = ("Critical", "Important", "Awareness")
PILLARS = ("Security", "Reliability", "Cost Optimization", "Operational Excellence", "Performance Efficiency")
RULE_DOC = "https://azure.github.io/PSRule.Rules.Azure/en/rules/{id}/"


@dataclass(frozen=True)
class Rule:
    id: str
    pillar: str | None
    severity: str
    status: str
    checks: tuple[str, ...]
    reason: str

    @property
    def family(self) -> str:
        """``Azure.Storage`` for ``Azure.Storage.Defender.DataScan``: the first two segments."""
        return ".".join(self.id.split(".")[:2])


@dataclass(frozen=True)
class Family:
    prefix: str
    types: tuple[str, ...]  # "*": every resource
    rules: tuple[str, ...]  # rule names after the prefix; empty for a family out of scope
    reason: str  # why a family with no listed rules reads nothing the stacks deploy


@dataclass(frozen=True)
class Parity:
    source: dict[str, Any]
    families: dict[str, Family]
    no_rules: tuple[str, ...]
    rules: tuple[Rule, ...]


def _problems(document: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for entry in document.get("rules") or []:
        rule_id = entry.get("id", "?")
        if entry.get("status") not in STATUSES:
            problems.append(f"{rule_id}: status must be one of {STATUSES}")
        if entry.get("severity") not in SEVERITIES:
            problems.append(f"{rule_id}: severity must be one of {SEVERITIES}")
        if entry.get("pillar") not in (None, *PILLARS):
            problems.append(f"{rule_id}: pillar must be one of {PILLARS} or null")
        if entry.get("status") in ("enforced", "accepted", "planned") and not entry.get("checks"):
            problems.append(f"{rule_id}: an {entry.get('status')} rule names its checks")
        if entry.get("status") == "accepted" and not entry.get("reason"):
            problems.append(f"{rule_id}: an accepted rule says why the risk is accepted")
        if entry.get("status") == "not-applicable" and (entry.get("checks") or not entry.get("reason")):
            problems.append(f"{rule_id}: a not-applicable rule gives a reason and names no checks")
    duplicates = [i for i, n in Counter(e.get("id") for e in document.get("rules") or []).items() if n > 1]
    problems += [f"{i}: listed twice" for i in duplicates]
    return problems


def load(path: Path = DATA) -> Parity:
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    problems = _problems(document)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    families = {
        prefix: Family(prefix, tuple(body.get("types") or ()), tuple(body.get("rules") or ()), body.get("reason") or "")
        for prefix, body in document["families"].items()
    }
    rules = tuple(
        Rule(e["id"], e.get("pillar"), e["severity"], e["status"], tuple(e.get("checks") or ()), e.get("reason") or "")
        for e in document["rules"]
    )
    return Parity(document["source"], families, tuple(document.get("no_rules") or ()), rules)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(parity: Parity | None = None) -> str:
    parity = parity or load()
    source = parity.source
    counts = Counter(rule.status for rule in parity.rules)
    lines = [
        "# PSRule for Azure parity",
        "",
        "<!-- generated from policies/psrule.yaml by `make docs` (python -m azml.policy.psrule); do not edit -->",
        "",
        "Every rule of [PSRule for Azure](https://github.com/Azure/PSRule.Rules.Azure) that reads a resource type",
        "the dev or prod stack deploys, and what covers it here: the policies of the two CrossGuard packs",
        "(`azml-…` checklist, `azure-…` platform rules) or checkov checks (`CKV_…`, ours `CKV_AZML_…`), or why it",
        "does not apply. `tests/policies/test_psrule_parity.py` holds the table to the packs, checkov and both plans.",
        "",
        f"Rules read from `{source['repository']}` at commit `{source['commit']}` (`{source['catalogue']}`:",
        "rule ids and severities); pillars and resource types from:",
        "",
    ]
    lines += [f"- `{entry}`" for entry in [*source.get("pillars", []), *source.get("types", [])]]
    lines += [
        "",
        f"{len(parity.rules)} rules: {counts['enforced']} enforced, {counts['accepted']} enforced with a dated risk "
        f"acceptance, {counts['planned']} planned, {counts['not-applicable']} not applicable.",
        "",
        "An *accepted* rule is enforced by the named policy; a stack's `policies/config.<stack>.json` exempts the",
        "resources that do not meet it yet, each with its reason and expiry date (`azml plan` lists them and fails",
        "once one has expired).",
        "",
        "| PSRule rule | ARM types | pillar | severity | status | covered by / reason |",
        "|---|---|---|---|---|---|",
    ]
    for rule in sorted(parity.rules, key=lambda r: r.id.lower()):
        family = parity.families[rule.family]
        types = "every resource" if "*" in family.types else "<br>".join(t.split("/", 1)[1] for t in family.types)
        checks = ", ".join(f"`{c}`" for c in rule.checks)
        text = checks + (f" ({_cell(rule.reason)})" if checks and rule.reason else "") if checks else _cell(rule.reason)
        lines.append(
            f"| [{rule.id}]({RULE_DOC.format(id=rule.id)}) | {types} | {rule.pillar or '—'} | {rule.severity} "
            f"| {rule.status} | {text} |"
        )
    lines += ["", "## Rule families that read nothing the stacks deploy", ""]
    for family in parity.families.values():
        if not family.rules:
            lines.append(f"- `{family.prefix}.*`: {_cell(family.reason)}")
    lines += [
        "",
        "## Deployed types no PSRule rule reads",
        "",
        ", ".join(f"`{t}`" for t in parity.no_rules) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    write_atomically(PAGE, render())
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
