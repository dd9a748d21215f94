"""Azure's own platform rules as a second CrossGuard policy pack.

``policies/platform/__main__.py`` builds the pack from :data:`ALL_POLICIES`;
tests and the offline runner import this package directly. Each module holds
the rules of one area; :data:`PLATFORM_INFO` holds every rule's metadata and
:data:`QUOTES` Microsoft's words for it.
"""

from __future__ import annotations

from . import assets, defender, integration, network, ordering  # isort: skip
from .rules import FRAMEWORK, PLATFORM_INFO, QUOTES, Rule

PACK_NAME = "azml-azure-platform"

ALL_POLICIES = [
    *assets.POLICIES,
    *network.POLICIES,
    *integration.POLICIES,
    *defender.POLICIES,
    *ordering.POLICIES,
]

__all__ = ["ALL_POLICIES", "FRAMEWORK", "PACK_NAME", "PLATFORM_INFO", "QUOTES", "Rule"]
