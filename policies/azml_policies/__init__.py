"""The azml security checklist as a CrossGuard policy pack.

``policies/__main__.py`` builds the pack from :data:`ALL_POLICIES`; tests and
the offline runner import this package directly (never ``__main__``, which
starts a gRPC server and blocks). :data:`POLICY_INFO` holds every policy's
metadata: checklist item, severity, remediation, resource types, property
paths and config schema with defaults.
"""

from __future__ import annotations

# Import order is registration order (POLICY_INFO); the stack policy modules
# follow in the order of ALL_POLICIES.
from . import (  # isort: skip
    compute,
    data_protection,
    governance,
    governance_monitoring,
    defender_storage,
    identity,
    keyvault,
    network_security,
    rbac,
    rbac_roles,
    registry,
    secret_values,
    serving,
    stack_network,
    stack_audit,
    stack_monitoring,
    stack_serving,
    storage,
    supply_chain,
    virtual_network,
    workspace,
)
from .checks import BASELINE, CHECKLIST, POLICY_INFO, PolicyInfo, config_of

PACK_NAME = "azml-security-checklist"

ALL_POLICIES = [
    *workspace.POLICIES,
    *storage.POLICIES,
    *keyvault.POLICIES,
    *registry.POLICIES,
    *compute.POLICIES,
    *serving.POLICIES,
    *secret_values.POLICIES,
    *rbac.POLICIES,
    *rbac_roles.POLICIES,
    *network_security.POLICIES,
    *virtual_network.POLICIES,
    *stack_network.POLICIES,
    *stack_audit.POLICIES,
    *stack_monitoring.POLICIES,
    *stack_serving.POLICIES,
    *governance.POLICIES,
    *governance_monitoring.POLICIES,
    *defender_storage.POLICIES,
    *data_protection.POLICIES,
    *identity.POLICIES,
    *supply_chain.POLICIES,
]

__all__ = ["ALL_POLICIES", "BASELINE", "CHECKLIST", "PACK_NAME", "POLICY_INFO", "PolicyInfo", "config_of"]
