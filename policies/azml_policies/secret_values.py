"""Secrets by value, in every input of every resource.

``azml-secret-values`` walks all inputs of every resource the stack declares
(Azure resources and our dynamic resources alike: tags, descriptions,
environment variables, the function app's ``siteConfig.appSettings``, job and
schedule definitions, embedded documents) and reports each known string that
holds a secret in plain text, naming the resource, the property path and the
detector, with a redacted hint instead of the value:

- the detectors of :mod:`.secret_detectors` recognise a secret by its shape
  (private keys, SAS tokens, keys and passwords in connection strings and
  URLs, GitHub tokens, Entra ID client secrets, JWTs);
- ``secret-named-setting``: an input or setting *named* like a secret
  (``*_PASSWORD``, ``*_SECRET``, ``*_KEY``, ``*_CONN_STR``, ``sasToken``...;
  for ``[{name, value}]`` lists such as ``appSettings`` the ``name`` counts)
  that holds a literal, unless the literal plainly carries no credential (an
  identity-based connection string, an Application Insights connection
  string, an endpoint URL, a resource id).

What passes: values marked secret (the plan's ``"[secret]"``, a
``pulumi_policy.Secret`` as the SDK hands them to remediation) and references
a service resolves at run time — App Service Key Vault references
(``@Microsoft.KeyVault(...)``, app-service/app-service-key-vault-references),
Azure ML secret injection (``${{keyvault:...}}``, ``${{azureml://connections/...}}``,
machine-learning/concept-secret-injection), Container Apps ``keyvaultref:`` /
``secretref:`` and ``azureml://`` asset URIs.

A marked secret is encrypted in the Pulumi state, which is what this policy
guards. Where Azure itself shows a value to readers (ML deployment environment
variables live in the deployment definition) even a marked secret is exposed:
``azml-deployment-no-plaintext-secrets`` (serving.py) covers that.

Under ``pulumi preview`` the Python policy SDK unwraps secrets before resource
validation (``pulumi_policy.deserialize``), so a marked secret reaches this
policy as its plain value there; ``azml plan`` sends the plan's mark and sees
it. A program that passes a marked secret into a resource input would be
reported by a live preview; the program passes none today (the dynamic
providers' serialized ``__provider`` matches no detector).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from typing import Any, Iterator

from pulumi_policy import Secret, Severity

from . import checks
from .checks import PolicyInfo, resource_policy
from .secret_detectors import DETECTOR_IDS, DETECTORS, credential_free, detect, placeholder, redacted
from .topology import Resource
from .values import UNKNOWN

NAMED_DETECTOR = "secret-named-setting"
ALL_DETECTORS = (*DETECTOR_IDS, NAMED_DETECTOR)

#: Every resource type (``checks.resource_policy`` reads ``"*"`` as all of them).
ANY_TYPE = "*"

#: Glob patterns over a name turned to UPPER_SNAKE case (``adminPassword`` ->
#: ``ADMIN_PASSWORD``, ``db-conn-str`` -> ``DB_CONN_STR``). Suffixes, not
#: substrings: ``KEYVAULT_URI`` and ``TOKEN_AUDIENCE`` name no secret.
SECRET_NAME_PATTERNS = [
    "*PASSWORD", "*PASSWD", "*_PWD",
    "*SECRET",
    "*TOKEN",
    "*_KEY", "*APIKEY", "*ACCESSKEY", "*ACCOUNTKEY",
    "*CONN_STR", "*CONNSTR", "*CONNECTION_STRING", "*CONNECTIONSTRING",
    "*CREDENTIAL", "*CREDENTIALS",
    "SAS", "*_SAS", "*SAS_URL", "*SAS_URI",
]  # fmt: skip
#: Names that end like a secret's but name something public.
NOT_SECRET_NAME_PATTERNS = [
    "*PUBLIC_KEY",  # SSH and other public keys
    "*INSTRUMENTATION_KEY",  # Application Insights: an identifier (azure-monitor/app/connection-strings)
    "*PARTITION_KEY", "*ROW_KEY", "*SORT_KEY", "*SHARD_KEY", "*IDEMPOTENCY_KEY", "*CACHE_KEY",
]  # fmt: skip
#: Values a service resolves to a secret at run time (case-insensitive prefixes).
REFERENCE_PREFIXES = [
    "@Microsoft.KeyVault(",
    "${{keyvault:",
    "${{azureml://connections/",
    "keyvaultref:",
    "secretref:",
    "azureml://",
]

_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
_PLAIN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "enabled", "disabled"})


def snake_name(name: str) -> str:
    """``adminPassword`` -> ``ADMIN_PASSWORD``; ``AzureWebJobs__accountKey`` -> ``AZURE_WEB_JOBS__ACCOUNT_KEY``."""
    return _SEPARATORS.sub(lambda m: "__" if m.group(0) == "__" else "_", _WORD_BREAK.sub("_", name)).upper()


def secret_named(name: str, patterns: list[str], not_patterns: list[str] = NOT_SECRET_NAME_PATTERNS) -> bool:
    return _secret_named(name, tuple(patterns), tuple(not_patterns))


@functools.lru_cache(maxsize=4096)
def _secret_named(name: str, patterns: tuple[str, ...], not_patterns: tuple[str, ...]) -> bool:
    # Cached: every resource asks about the same few names (tags, settings),
    # and ~20 glob matches per string were most of this policy's time.
    snake = snake_name(name)
    if any(fnmatch.fnmatchcase(snake, p.upper()) for p in not_patterns):
        return False
    return any(fnmatch.fnmatchcase(snake, p.upper()) for p in patterns)


def is_reference(text: str, prefixes: list[str] = REFERENCE_PREFIXES) -> bool:
    lowered = text.strip().lower()
    return any(lowered.startswith(p.lower()) for p in prefixes)


def _setting_name(mapping: Mapping[str, Any]) -> str | None:
    """The ``name`` of a ``{name, value}`` / ``{name, connectionString}`` entry
    (App Service appSettings and connectionStrings, Kubernetes-style env lists)."""
    name = mapping.get("name")
    if isinstance(name, str) and ("value" in mapping or "connectionString" in mapping):
        return name
    return None


def _path(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def walk(value: Any, path: tuple[Any, ...] = (), name: str | None = None) -> Iterator[tuple[tuple[Any, ...], str | None, str]]:
    """``(path, name, text)`` for every known string in ``value`` that is not
    marked secret; ``name`` is the key (or setting name) it is held under."""
    if isinstance(value, Secret) or value is UNKNOWN:
        return
    if isinstance(value, str):
        yield path, name, value
    elif isinstance(value, Mapping):
        setting = _setting_name(value)
        for key, item in value.items():
            held_as = setting if setting is not None and key in ("value", "connectionString") else str(key)
            yield from walk(item, (*path, key), held_as)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index), name)


def _fix(resource: Resource, path: tuple[Any, ...]) -> str:
    keys = {str(p) for p in path}
    if "environmentVariables" in keys and resource.type.endswith("Deployment"):
        return "reference it with Azure ML secret injection (${{keyvault:https://<vault>.vault.azure.net/secrets/<name>/<version>}})"
    if keys & {"appSettings", "connectionStrings"}:
        return (
            "use an identity-based connection, or store it in Key Vault and set "
            "@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>)"
        )
    return "store it in Key Vault and pass a reference, or pass it as a Pulumi secret (config.require_secret / Output.secret)"


def _findings(resource: Resource, config: dict[str, Any]) -> Iterator[str]:
    disabled = frozenset(config["disabledDetectors"])
    prefixes = config["referencePrefixes"]
    for path, name, text in walk(resource.props):
        if placeholder(text):
            continue
        where = _path(path) + (f" ({name})" if name and path and name != path[-1] else "")
        found = detect(text, disabled)
        if found is not None:
            # Even inside a reference: a signature or key in the text is the secret itself.
            detector, hint = found
            yield (
                f"{resource.label}: {where} holds {detector.title} in plain text ({hint}) [{detector.id}]; "
                f"{_fix(resource, path)}"
            )
            continue
        if NAMED_DETECTOR in disabled or name is None:
            continue
        if not secret_named(name, config["secretNamePatterns"], config["notSecretNamePatterns"]):
            continue
        if is_reference(text, prefixes) or text.strip().lower() in _PLAIN_WORDS or credential_free(text):
            continue
        yield (
            f"{resource.label}: {where} is named like a secret and holds a literal value ({redacted(text)}) "
            f"[{NAMED_DETECTOR}]; {_fix(resource, path)}"
        )


_DETECTOR_DOCS = "; ".join(f"{d.id}: {d.description}" for d in DETECTORS)

secret_values = resource_policy(
    PolicyInfo(
        name="azml-secret-values",
        description=(
            "No resource input holds a secret in plain text: private keys, SAS tokens, keys and passwords in "
            "connection strings or URLs, tokens, or a literal in a setting named like a secret — only Pulumi "
            "secrets and Key Vault / secret-injection references."
        ),
        checklist=checks.SECRETS,
        severity=Severity.CRITICAL,
        remediation=(
            "Remove the value from the program and rotate it (it is in the state and the plan). Prefer an "
            "identity-based connection (managed identity + RBAC); otherwise store the secret in Key Vault and "
            "reference it: @Microsoft.KeyVault(SecretUri=...) in App Service / Functions settings "
            "(app-service/app-service-key-vault-references), ${{keyvault:...}} or ${{azureml://connections/...}} "
            "in Azure ML deployment environment variables (machine-learning/concept-secret-injection); a value "
            "the program must pass itself goes in as a Pulumi secret (pulumi config set --secret, "
            "config.require_secret)."
        ),
        resource_types=(ANY_TYPE,),
        properties=("*",),
        config={
            "secretNamePatterns": {
                "type": "array",
                "items": {"type": "string"},
                "default": SECRET_NAME_PATTERNS,
                "description": "Glob patterns over UPPER_SNAKE names of inputs and settings that hold secrets.",
            },
            "notSecretNamePatterns": {
                "type": "array",
                "items": {"type": "string"},
                "default": NOT_SECRET_NAME_PATTERNS,
                "description": "Names that match a secret pattern but name something public.",
            },
            "referencePrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": REFERENCE_PREFIXES,
                "description": "Values starting with one of these are references a service resolves, not secrets.",
            },
            "disabledDetectors": {
                "type": "array",
                "items": {"type": "string", "enum": list(ALL_DETECTORS)},
                "default": [],
                "description": f"Detector ids not to run ({_DETECTOR_DOCS}; {NAMED_DETECTOR}: see secret_values.py).",
            },
        },
        tags=("secrets",),
    ),
    _findings,
)

POLICIES = [secret_values]
