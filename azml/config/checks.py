"""Checks that need the whole stack config, each naming its exact key.

They run after the schema accepted the shape, so every reference they follow
(deployment names, cluster names) is already well-formed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..naming import endpoint_name, model_name_version
from ..serving.rules import traffic_problems
from .releases.bandit import bandit_problems
from .releases.data_validation import data_validation_problems
from .paths import path_problems
from .schema import StackConfig

# Azure: endpoint names are 3-32 characters and unique per region.
MAX_ENDPOINT_NAME = 32
# Azure ML monitor notifications: "a limitation of 499 characters in total".
MAX_MONITOR_EMAIL_CHARS = 499


def stack_problems(config: StackConfig, project_dir: Path | None = None) -> Iterator[tuple[str, str]]:
    """``(key path without namespace, message)`` for each problem. With
    ``project_dir``, files the config points at must exist there. A path that
    leaves the project is refused before anything else is looked at."""
    escaping = list(path_problems(config, project_dir))
    if escaping:
        yield from escaping
        return
    clusters = [c.name for c in config.compute.clusters]
    seen_endpoints: dict[str, str] = {}
    environments: dict[tuple[str, str], tuple[str, object]] = {}

    endpoints = [("onlineEndpoints", i, e) for i, e in enumerate(config.online_endpoints)]
    endpoints += [("batchEndpoints", i, e) for i, e in enumerate(config.batch_endpoints)]
    for collection, index, endpoint in endpoints:
        base = f"{collection}[{index}]"
        full = endpoint_name(config, endpoint.name)
        if len(full) > MAX_ENDPOINT_NAME:
            yield f"{base}.name", f"deployed name {full!r} is {len(full)} characters; Azure allows {MAX_ENDPOINT_NAME}"
        if full in seen_endpoints:
            yield f"{base}.name", f"endpoint {endpoint.name!r} is also declared at {seen_endpoints[full]}"
        seen_endpoints.setdefault(full, base)

        for d_index, deployment in enumerate(endpoint.deployments):
            where = f"{base}.deployments[{d_index}]"
            env = deployment.environment
            key = (env.name, env.version)
            definition = env.model_dump(exclude={"name", "version"})
            if key in environments and environments[key][1] != definition:
                yield f"{where}.environment", (
                    f"environment {env.name}:{env.version} is defined differently at {environments[key][0]}; "
                    "a registered environment version is immutable: bump the version"
                )
            environments.setdefault(key, (f"{where}.environment", definition))
            if project_dir is not None and env.conda_file is not None and not (project_dir / env.conda_file).is_file():
                yield f"{where}.environment.condaFile", f"no file {env.conda_file} under {project_dir}"
            if project_dir is not None and deployment.lineage is not None:
                yield from _lineage_problems(f"{where}.lineage", project_dir, deployment.lineage, deployment.model)
            if collection == "batchEndpoints" and deployment.compute not in clusters:
                yield f"{where}.compute", (
                    f"{deployment.compute!r} is not a declared compute cluster (declared: {', '.join(clusters) or 'none'})"
                )

        if collection == "onlineEndpoints":
            names = [d.name for d in endpoint.deployments]
            for key, message in traffic_problems(endpoint.traffic, endpoint.mirror_traffic, names):
                yield f"{base}.{key}", message

    yield from observability_problems(config)
    yield from operations_problems(config)
    yield from bandit_problems(config)
    yield from data_validation_problems(config, project_dir)


def _lineage_problems(key: str, project_dir: Path, relative: str, model: object) -> Iterator[tuple[str, str]]:
    """The deployment's lineage.json exists, is intact and records the model it serves."""
    from ..lineage import record_problems  # the config layer only pays for it when a stack uses lineage

    path = project_dir / relative
    if not path.is_file():
        yield key, f"no file {relative} under {project_dir} (write it with `azml lineage`)"
        return
    name, version = model_name_version(model)
    for message in record_problems(path, name, version):
        yield key, message


def observability_problems(config: StackConfig) -> Iterator[tuple[str, str]]:
    """Model monitors and alerts refer to declared endpoints and fit Azure's limits."""
    monitoring = config.model_monitoring
    if not monitoring.enabled:
        return
    declared = [e.name for e in config.online_endpoints]
    for index, name in enumerate(monitoring.endpoints or []):
        if name not in declared:
            yield f"modelMonitoring.endpoints[{index}]", (
                f"{name!r} is not a declared online endpoint (declared: {', '.join(declared) or 'none'})"
            )
    emails = monitoring.emails if monitoring.emails is not None else config.alerts.emails
    key = "modelMonitoring.emails" if monitoring.emails is not None else "alerts.emails"
    if len(",".join(emails)) > MAX_MONITOR_EMAIL_CHARS:
        yield key, f"Azure ML monitor notifications take at most {MAX_MONITOR_EMAIL_CHARS} characters of emails in total"
    data = monitoring.training_data
    if monitoring.feature_attribution_drift.enabled and data is not None and data.target_column is None:
        yield "modelMonitoring.trainingData.targetColumn", (
            "feature attribution drift needs the label column of the training data "
            "(or set featureAttributionDrift.enabled: false)"
        )


def operations_problems(config: StackConfig) -> Iterator[tuple[str, str]]:
    """The retraining trigger and the budget need something elsewhere in the stack."""
    if config.retraining.enabled and config.network.subnets.integration is None:
        yield "retraining", (
            "needs network.subnets.integration (the Function App's VNet integration subnet, /28 or larger)"
        )
    budget = config.governance.budget
    if budget is not None and not budget.contact_emails and not config.alerts.enabled:
        yield "governance.budget", "needs contactEmails or the alerts action group (alerts.enabled) to notify anyone"
