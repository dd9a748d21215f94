"""The curated checkov skip list: checks that fail on our templates on purpose.

Every entry is a risk acceptance: it names the check, the resources it
covers (``fnmatch`` patterns on checkov's resource id ``<ARM type>.<ARM
name>``, as narrow as the resources the reason is about: a name prefix, never
a bare ``*``), why the check does not apply there or what covers it instead,
and the last day it holds (``expires``, YYYY-MM-DD, UTC); it may be limited to
some stacks. ``azml plan`` lists every entry with its reason and date, warns
30 days ahead and fails once the date has passed (azml/policy/acceptances.py):
renew the date with a fresh look at the reason, or fix the resources. A failed
check that no entry matches fails ``azml checkov`` (and the tests). An entry
that matches nothing on the shipped stacks is reported as unused, so the list
cannot silently outlive its reason. The first matching entry wins, so narrower
entries come first.

checkov still runs skipped checks: they show up in the report and in SARIF
(as suppressed results, with the reason as justification), not as failures.

Entries marked "program fix" are accepted for now but should be fixed in the
Pulumi program rather than skipped for good.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# "<ARM type>.<name glob>": the name starts with at least three literal characters.
_PATTERN = re.compile(r"^[A-Za-z]+\.[A-Za-z]+(/[A-Za-z]+)+\.[A-Za-z0-9][A-Za-z0-9_.-]{2,}[^/]*$")


def expiry_of(text: str) -> dt.date | None:
    """``YYYY-MM-DD`` as a date, None when it is not one."""
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


class SkipError(ValueError):
    """A skip entry that does not name its resources or its expiry date."""


@dataclass(frozen=True)
class Skip:
    check_id: str
    reason: str
    #: fnmatch patterns on checkov's resource id "<ARM type>.<ARM name>" (at least one).
    resources: tuple[str, ...] = ()
    #: environments (``azml:environment``) this entry applies to; empty: every stack.
    stacks: tuple[str, ...] = ()
    #: the last day the entry holds (YYYY-MM-DD, UTC).
    expires: str = ""

    def __post_init__(self) -> None:
        if not self.resources:
            raise SkipError(f"skip {self.check_id}: name the resources it covers (resources=...)")
        loose = [p for p in self.resources if not _PATTERN.match(p)]
        if loose:
            raise SkipError(
                f"skip {self.check_id}: resource patterns must be '<ARM type>.<name prefix>*' or an exact id, got {loose}"
            )
        if expiry_of(self.expires) is None:
            raise SkipError(f"skip {self.check_id}: expires must be a date YYYY-MM-DD, got {self.expires!r}")

    def matches(self, check_id: str, resource: str, stack: str | None) -> bool:
        if check_id != self.check_id:
            return False
        if self.stacks and stack not in self.stacks:
            return False
        return any(fnmatchcase(resource, pattern) for pattern in self.resources)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "checkId": self.check_id,
            "reason": self.reason,
            "resources": list(self.resources),
            "expires": self.expires,
        }
        if self.stacks:
            document["stacks"] = list(self.stacks)
        return document


SKIPS: tuple[Skip, ...] = (
    Skip(
        "CKV_AZURE_59",
        "Required by Azure: the retraining function's host storage receives Event Grid deliveries (queue) and "
        "dead letters (blob container), which Event Grid makes over the public endpoint only (\"Currently, "
        "it's not possible to deliver events using private endpoints\", event-grid/consume-private-endpoints). "
        "publicNetworkAccess stays Enabled with networkRuleSet defaultAction Deny, bypass AzureServices and no "
        "IP or virtual-network rules: only trusted Azure services pass. Every other account has public network "
        "access Disabled. The policy pack exempts the same account (policies/README.md).",
        resources=("Microsoft.Storage/storageAccounts.stfnazml*",),
        expires="2027-06-30",
    ),
    Skip(
        "CKV_AZURE_166",
        "Program fix (prod): quarantine holds every pushed image until a scanner releases it, and no scanner "
        "is wired up yet, so azml:registry.quarantine stays false (docs/operations.md). Meanwhile serving images come only "
        "from the private registry or approved mcr.microsoft.com/azureml base images, enforced by the policy "
        "pack. Turn quarantine on in prod together with the scanner, then drop this entry for prod.",
        resources=("Microsoft.ContainerRegistry/registries.crazml*",),
        expires="2027-03-31",
    ),
    Skip(
        "CKV_AZURE_87",
        "Not applicable: the check reads every Microsoft.Security/pricings resource as the Key Vault plan and "
        "passes only one named KeyVaults. These resources are the Containers, StorageAccounts and Arm plans "
        "(azml:governance.defenderPlans), which CKV_AZURE_19 checks for the Standard tier; prod's KeyVaults "
        "plan is checked by this check itself and passes.",
        resources=(
            "Microsoft.Security/pricings.Containers",
            "Microsoft.Security/pricings.StorageAccounts",
            "Microsoft.Security/pricings.Arm",
        ),
        expires="2027-12-31",
    ),
    Skip(
        "CKV_AZURE_233",
        "Availability, not security: dev sets azml:registry.zoneRedundant false to save cost; prod's registry "
        "is zone redundant and passes.",
        resources=("Microsoft.ContainerRegistry/registries.crazml*",),
        stacks=("dev",),
        expires="2027-12-31",
    ),
    Skip(
        "CKV_AZURE_206",
        "Availability, not security: dev takes Standard_LRS from azml:storage.sku and "
        "azml:retraining.hostStorageSku to save cost; prod's accounts are zone-redundant and pass.",
        resources=("Microsoft.Storage/storageAccounts.stazml*", "Microsoft.Storage/storageAccounts.stfnazml*"),
        stacks=("dev",),
        expires="2027-12-31",
    ),
    Skip(
        "CKV_AZURE_225",
        "Availability, not security: the only App Service plan is the Flex Consumption (FC1) plan of the "
        "retraining trigger, which tolerates an outage: undelivered events wait in Event Grid retries (24 h) "
        "and in the storage queue.",
        resources=("Microsoft.Web/serverfarms.asp-azml-*-retrain",),
        expires="2027-06-30",
    ),
    Skip(
        "CKV_AZURE_17",
        "Not applicable: the retraining function has no public ingress (publicNetworkAccess Disabled, private "
        "endpoint only) and is queue-triggered, so there is no HTTP client to authenticate with a client "
        "certificate; its own connections are identity-based (Entra ID).",
        resources=("Microsoft.Web/sites.func-azml-*-retrain-*",),
        expires="2027-12-31",
    ),
    Skip(
        "CKV_AZURE_212",
        "Not applicable: a Flex Consumption function app scales from zero on queue length; there is no fixed "
        "instance count to fail over between, and queued events wait for an instance.",
        resources=("Microsoft.Web/sites.func-azml-*-retrain-*",),
        expires="2027-12-31",
    ),
    Skip(
        "CKV_AZURE_213",
        "Not applicable: health check takes unhealthy instances out of HTTP load balancing; the retraining "
        "function serves no HTTP traffic (queue trigger), failed runs are retried by the queue and the "
        "dead-letter path, and its logs go to Log Analytics through its diagnostic setting.",
        resources=("Microsoft.Web/sites.func-azml-*-retrain-*",),
        expires="2027-12-31",
    ),
)


def find_skip(skips: tuple[Skip, ...] | list[Skip], check_id: str, resource: str, stack: str | None) -> Skip | None:
    for skip in skips:
        if skip.matches(check_id, resource, stack):
            return skip
    return None
