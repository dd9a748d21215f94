"""Retraining trigger, function app and governance: Event Grid delivery to
firewalled storage, telemetry with Entra ID, function egress, Flex
Consumption limits, locks that leave releases possible, budgets, Defender."""

from __future__ import annotations

POLICIES: list = []
