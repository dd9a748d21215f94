"""Managed network: provisioned before deployments, outbound rules image
builds need, serverless Spark and batch in approved-outbound mode, compute
identities on key-less storage."""

from __future__ import annotations

POLICIES: list = []
