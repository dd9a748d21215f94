"""Serving: assets a deployment references exist when its PUT runs; role
assignments Azure ML makes itself; deployment settings Azure ignores or
advises against; autoscale owning the instance count."""

from __future__ import annotations

POLICIES: list = []
