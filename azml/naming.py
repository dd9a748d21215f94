"""Resource names, derived once from config and checked against Azure's rules.

Abbreviations follow the Cloud Adoption Framework (rg-, vnet-, snet-, nsg-,
pe-, log-, appi-, st, kv-, cr, mlw-). Storage accounts, vaults and registries
have globally unique DNS names, so they carry a short suffix: ``uniqueSuffix``
from config, or a digest of prefix, environment and location (stable across
runs, different per stack).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # naming is imported by config validation itself
    from .config.schema import StackConfig

ENVIRONMENT_CODES = {"dev": "dev", "test": "tst", "staging": "stg", "prod": "prd"}

# name -> (pattern, human rule), from Azure's naming rules per resource type.
_RULES: dict[str, tuple[str, str]] = {
    "storage_account": (r"^[a-z0-9]{3,24}$", "3-24 lowercase letters and digits"),
    "function_storage": (r"^[a-z0-9]{3,24}$", "3-24 lowercase letters and digits"),
    "function_app": (r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]$", "2-60 letters, digits and hyphens"),
    "key_vault": (r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", "3-24 letters, digits, single hyphens"),
    "registry": (r"^[a-zA-Z0-9]{5,50}$", "5-50 letters and digits"),
    "workspace": (r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$", "3-33 letters, digits, hyphens, underscores"),
}


@dataclass(frozen=True)
class Names:
    base: str
    suffix: str
    resource_group: str
    virtual_network: str
    log_analytics: str
    app_insights: str
    storage_account: str
    key_vault: str
    registry: str
    workspace: str
    function_storage: str
    function_plan: str
    function_app: str
    system_topic: str

    def subnet(self, purpose: str) -> str:
        return f"snet-{self.base}-{_kebab(purpose)}"

    def nsg(self, purpose: str) -> str:
        return f"nsg-{self.base}-{_kebab(purpose)}"

    def private_endpoint(self, target: str, group_id: str) -> str:
        return f"pe-{target}-{group_id}"


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def endpoint_name(config: StackConfig, short_name: str) -> str:
    """Endpoint names are unique per region across subscriptions: carry the prefix."""
    return f"{config.prefix}-{ENVIRONMENT_CODES[config.environment]}-{short_name}"


def unique_suffix(config: StackConfig) -> str:
    if config.unique_suffix:
        return config.unique_suffix
    digest = hashlib.sha256(f"{config.prefix}/{config.environment}/{config.location}".encode()).hexdigest()
    return digest[:6]


def names_for(config: StackConfig) -> Names:
    env = ENVIRONMENT_CODES[config.environment]
    base = f"{config.prefix}-{env}"
    suffix = unique_suffix(config)
    names = Names(
        base=base,
        suffix=suffix,
        resource_group=f"rg-{base}-{config.location}",
        virtual_network=f"vnet-{base}",
        log_analytics=f"log-{base}",
        app_insights=f"appi-{base}",
        storage_account=f"st{config.prefix}{env}{suffix}",
        key_vault=f"kv-{base}-{suffix}",
        registry=f"cr{config.prefix}{env}{suffix}",
        workspace=f"mlw-{base}",
        function_storage=f"stfn{config.prefix}{env}{suffix}",
        function_plan=f"asp-{base}-retrain",
        function_app=f"func-{base}-retrain-{suffix}",
        system_topic=f"evgt-{base}-training-data",
    )
    for field, (pattern, rule) in _RULES.items():
        value = getattr(names, field)
        if not re.match(pattern, value):  # guarded by the prefix rule; kept as a tripwire
            raise ValueError(f"derived {field} name {value!r} breaks Azure's rule: {rule}")
    return names


def model_name_version(model: object) -> tuple[str, str]:
    """Name and version of a ``ModelRef`` (workspace or registry form)."""
    registry_uri = getattr(model, "registry_uri", None)
    if registry_uri:
        parts = str(registry_uri).split("/")  # azureml://registries/<r>/models/<name>/versions/<version>
        return parts[-3], parts[-1]
    return str(getattr(model, "name")), str(getattr(model, "version"))


def label(name: object, version: object) -> str:
    """The one label of a model version in reports, messages and MLflow tags:
    ``name:version``."""
    return f"{name}:{version}"


def model_label(model: object) -> str:
    """:func:`label` of a ``ModelRef`` (workspace or registry form)."""
    return label(*model_name_version(model))


def model_ref(model: object) -> str:
    """A deployment's model as observation, load test and scoreboard runs tag
    it: ``name:version`` of a workspace model, the registry URI of a registry
    model."""
    name = getattr(model, "name", None)
    return label(name, getattr(model, "version")) if name else str(getattr(model, "registry_uri"))
