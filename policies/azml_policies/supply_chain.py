"""The supply chain of serving images: approved sources, pinned references,
a vulnerability scanner on the registry Azure ML builds into, and no export
out of that registry.

The scanning story. Azure ML pushes every environment image it builds to the
workspace's container registry and pulls it from there ("Any image that
materializes is pushed to the container registry. The workspace uses it if
experimentation or deployment is triggered for the corresponding
environment", machine-learning/concept-vulnerability-management). Registry
quarantine holds each pushed image until a scanner marks it passed ("only
those images which have successfully passed security scan can be visible to
normal users", container-registry/container-registry-faq, a preview feature);
nothing in Azure marks Azure ML's own images, and Defender for Containers
scans and reports but does not release quarantined images, so quarantine on
that registry stops every image build. The gate is therefore Microsoft
Defender for Containers' agentless vulnerability assessment of the registry
("you can use Microsoft Defender for Containers to help scan your images for
vulnerabilities", the same page): :data:`vulnerability_assessment` requires
it wherever the stack has a registry. Quarantine stays a separate policy
(registry.py) that a stack accepts as a dated risk while no scanner
releases images.

Pinning. "Patched images are released under a new immutable tag and an
updated ``:latest`` tag" (concept-vulnerability-management): an Azure ML base
image's dated tag (``20241202.v1``) never moves, ``:latest`` does. Any other
tag is mutable (a registry tag can be pushed again), so an image scanned today
is pinned by digest (``@sha256:...``) or by a tag its publisher declares
immutable (``immutableTags``).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import BATCH_DEPLOYMENT, ENVIRONMENT_VERSION, ONLINE_DEPLOYMENT, REGISTRY
from .checks import Finding, PolicyInfo, exempt, expect_value, resource_policy, stack_policy
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_bool, get, same, show, unwrap

PRICING = "azure-native:security:Pricing"
VA_EXTENSION = "ContainerRegistriesVulnerabilityAssessments"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

# --------------------------------------------------------------------------- approved and pinned images


def _registry_hosts(stack: Stack) -> set[str]:
    hosts: set[str] = set()
    for registry in stack.of_type(REGISTRY):
        login = registry.get("loginServer")
        if isinstance(login, str) and login:
            hosts.add(login.lower().rstrip("/") + "/")
        name = registry.arm_name
        if name:
            hosts.add(f"{name.lower()}.azurecr.io/")
    return hosts


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``None``: untagged; a digest reference
    has no tag that matters)."""
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1] if ":" in last else None


def pin_problem(image: str, config: dict[str, Any]) -> str | None:
    """Why ``image`` is not pinned (``None``: a digest, or an immutable tag)."""
    if _DIGEST.search(image.lower()):
        return None
    tag = image_tag(image)
    if tag is None or tag.lower() == "latest":
        return f"{'has no tag' if tag is None else 'is tagged latest'}, which moves to every new build; pin a digest (@sha256:...)"
    for prefix, pattern in config["immutableTags"].items():
        if image.lower().startswith(prefix.lower()) and isinstance(pattern, str) and re.fullmatch(pattern, tag):
            return None
    if config["allowFloatingTags"]:
        return None if config["floatingTagsReason"].strip() else (
            f"floats (tag {tag!r} can be pushed again) and allowFloatingTags is set without a floatingTagsReason"
        )
    immutable = "; ".join(f"{p}: {t}" for p, t in config["immutableTags"].items()) or "none"
    return f"floats (tag {tag!r} can be pushed again); pin a digest (@sha256:...) or an immutable tag ({immutable})"


def _approved_images(stack: Stack, config: dict[str, Any]) -> Finding:
    prefixes = [p.lower() for p in config["allowedImagePrefixes"]]
    if config["allowStackRegistries"]:
        prefixes += sorted(_registry_hosts(stack))
    allowed = "; ".join(prefixes) or "none"
    for env in stack.of_type(ENVIRONMENT_VERSION):
        if exempt(config, env.name):
            continue
        image = env.get("properties.image")
        if isinstance(image, str):
            if not image.lower().startswith(tuple(prefixes)):
                yield env.urn, f"{env.label}: properties.image {image!r} is not from an approved registry ({allowed})"
            elif (problem := pin_problem(image, config)) is not None:
                yield env.urn, f"{env.label}: properties.image {image!r} {problem}"
        elif image is MISSING and isinstance(env.get("properties.build"), dict) and not config["allowDockerBuild"]:
            yield env.urn, (
                f"{env.label}: built from a Docker build context (properties.build); its base image cannot be "
                "verified — build the image in CI and reference it with properties.image"
            )
    env_prefixes = tuple(p.lower() for p in config["allowedEnvironmentPrefixes"])
    for deployment in stack.of_type(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT):
        if exempt(config, deployment.name, deployment.arm_name):
            continue
        env_id = deployment.get("properties.environmentId")
        if not isinstance(env_id, str):
            continue  # unknown or unset: the environment (if declared here) is checked above
        if env_id.lower().startswith(env_prefixes):
            continue
        if any(env.type == ENVIRONMENT_VERSION for env in stack.links(deployment, "properties.environmentId")):
            continue
        yield deployment.urn, (
            f"{deployment.label}: properties.environmentId {env_id!r} is neither an environment declared in this "
            f"stack nor under an approved prefix ({', '.join(config['allowedEnvironmentPrefixes']) or 'none'})"
        )


approved_images = stack_policy(
    PolicyInfo(
        name="azml-approved-images",
        description=(
            "Serving environments use images from approved registries only (Microsoft's Azure ML base images or this "
            "stack's own registry), pinned by digest or by a tag their publisher keeps immutable; never latest or untagged."
        ),
        checklist=checks.APPROVED_IMAGES,
        severity=Severity.HIGH,
        remediation=(
            "Reference an approved mcr.microsoft.com/azureml/ base image by a dated tag from its release notes "
            "(Azure/AzureML-Containers images/<name>/release-notes.md, e.g. openmpi4.1.0-ubuntu22.04:20241202.v1: "
            "\"Patched images are released under a new immutable tag\", machine-learning/concept-vulnerability-management), "
            "or build the image in CI, push it to the stack's registry and reference it by digest (@sha256:...); "
            "reference only environments declared in the stack."
        ),
        resource_types=(ENVIRONMENT_VERSION, REGISTRY, ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT),
        properties=(
            "EnvironmentVersion.properties.image",
            "EnvironmentVersion.properties.build",
            "Registry.registryName",
            "Registry.loginServer",
            "OnlineDeployment.properties.environmentId",
            "BatchDeployment.properties.environmentId",
        ),
        config={
            "allowedImagePrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["mcr.microsoft.com/azureml/"],
                "description": "Image prefixes (registry host and path) that are approved.",
            },
            "allowStackRegistries": {
                "type": "boolean",
                "default": True,
                "description": "Images from container registries declared in this stack (<name>.azurecr.io/) are approved.",
            },
            "allowedEnvironmentPrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["azureml://registries/azureml/"],
                "description": "environmentId prefixes approved without an environment in the stack (curated environments).",
            },
            "immutableTags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {"mcr.microsoft.com/azureml/": "[0-9]{8}\\.v[0-9]+"},
                "description": "Image prefix -> regular expression of the tags its publisher never moves (full match).",
            },
            "allowFloatingTags": {
                "type": "boolean",
                "default": False,
                "description": "Tolerate mutable tags other than latest (never untagged or latest); needs floatingTagsReason.",
            },
            "floatingTagsReason": {
                "type": "string",
                "default": "",
                "description": "Why this stack tolerates mutable tags (required with allowFloatingTags).",
            },
            "allowDockerBuild": {
                "type": "boolean",
                "default": False,
                "description": "Tolerate environments built from a Docker context (base image unverifiable).",
            },
        },
        kind="stack",
        tags=("serving", "supply-chain"),
    ),
    _approved_images,
)

# --------------------------------------------------------------------------- vulnerability assessment gate


def _assessment_problem(pricing: Resource) -> str | None:
    tier = pricing.get("pricingTier")
    if tier is UNKNOWN:
        return None
    if not same(tier, "Standard"):
        return f"{pricing.label}: pricingTier is {show(tier)}; must be 'Standard'"
    extensions = unwrap(pricing.get("extensions"))
    if extensions is UNKNOWN:
        return None
    for extension in extensions if isinstance(extensions, list) else []:
        if same(get(extension, "name"), VA_EXTENSION):
            enabled = as_bool(get(extension, "isEnabled"))
            return None if enabled in (True, UNKNOWN) else f"{pricing.label}: extension {VA_EXTENSION} isEnabled is {show(enabled)}"
    # Unnamed, the service decides (the REST spec does not say): name it.
    return f"{pricing.label}: extensions does not name {VA_EXTENSION}; name it with isEnabled 'True'"


def _vulnerability_assessment(stack: Stack, config: dict[str, Any]) -> Finding:
    if not config["required"]:
        return
    registries = [r for r in stack.of_type(REGISTRY) if not exempt(config, r.name, r.arm_name)]
    if not registries:
        return
    plans = [p for p in stack.of_type(PRICING) if same(p.get("pricingName"), "Containers") or p.get("pricingName") is UNKNOWN]
    problems = [problem for p in plans if (problem := _assessment_problem(p)) is not None]
    if plans and len(problems) < len(plans):
        return  # one plan in the stack scans the registries
    why = "; ".join(problems) if problems else "no security:Pricing 'Containers' in the stack"
    for registry in registries:
        yield registry.urn, (
            f"{registry.label}: images pushed here (Azure ML builds into it) are not scanned: {why}. Enable Defender for "
            f"Containers (azml:governance.defenderPlans.containers: pricingTier 'Standard', {VA_EXTENSION} on)"
        )


vulnerability_assessment = stack_policy(
    PolicyInfo(
        name="azml-registry-vulnerability-assessment",
        description=(
            "A stack with a container registry turns on Microsoft Defender for Containers with registry vulnerability "
            "assessment: the scan gate for the images Azure ML builds and serves."
        ),
        checklist=checks.APPROVED_IMAGES,
        severity=Severity.HIGH,
        remediation=(
            "Set azml:governance.defenderPlans.containers (security:Pricing 'Containers', pricingTier 'Standard', "
            f"extension {VA_EXTENSION} isEnabled 'True'); findings appear in Defender for Cloud "
            "(defender-for-cloud/agentless-vulnerability-assessment-azure). Where the subscription's plan is managed "
            "outside the stack, accept that on the registry in exemptResources with the reason."
        ),
        resource_types=(REGISTRY, PRICING),
        properties=("Registry.registryName", "Pricing.pricingName", "Pricing.pricingTier", "Pricing.extensions"),
        config={
            "required": {
                "type": "boolean",
                "default": True,
                "description": "Require the Defender for Containers plan in every stack with a registry.",
            }
        },
        kind="stack",
        tags=("registry", "supply-chain"),
    ),
    _vulnerability_assessment,
)

# --------------------------------------------------------------------------- export


def _export_disabled(cr: Resource, _config: dict[str, Any]) -> Iterator[str]:
    # (A disabled export policy on a public registry is refused by Azure: that
    # registry already breaks azml-registry-public-network-disabled.)
    yield from expect_value(cr, "policies.exportPolicy.status", "disabled", azure_default="enabled")


export_disabled = resource_policy(
    PolicyInfo(
        name="azml-registry-export-disabled",
        description="Container registries refuse exports (az acr import from them, acr transfer): images leave only by pull.",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.MEDIUM,
        remediation=(
            "Set policies.exportPolicy.status: 'disabled' with publicNetworkAccess: 'Disabled' on the Premium registry "
            "(components.dependencies.container_registry does): \"When disabling the exportPolicy property, you must also "
            "disable public network access\" (container-registry/data-loss-prevention; PSRule Azure.ACR.ExportPolicy). "
            "Nothing in the platform copies images out of this registry (models travel through the Azure ML registry); "
            "an environment that must be copied elsewhere is rebuilt from its definition there."
        ),
        resource_types=(REGISTRY,),
        properties=("policies.exportPolicy.status",),
        tags=("registry", "network"),
    ),
    _export_disabled,
)

POLICIES = [approved_images, vulnerability_assessment, export_disabled]
