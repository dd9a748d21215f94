"""The supply chain of serving images: approved and pinned images, the
Defender for Containers scan gate on the registry Azure ML builds into, no
export out of it (policies/azml_policies/supply_chain.py)."""

from __future__ import annotations

from azml.plan.model import Plan

from . import Mutation, one, removal, setting

CATEGORY = "supply-chain"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
REGISTRY = "azure-native:containerregistry:Registry"
PRICING = "azure-native:security:Pricing"
BASE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"

IMAGES = "azml-approved-images"
SCAN_GATE = "azml-registry-vulnerability-assessment"


def _image(reference: str):
    return setting(ENVIRONMENT, "properties.image", reference)


def _docker_build(plan: Plan) -> None:
    properties = one(plan, ENVIRONMENT).inputs["properties"]
    properties.pop("image")
    properties["build"] = {"contextUri": "https://github.com/someone/images.git#main", "dockerfilePath": "Dockerfile"}


def _scanning_extension_off(plan: Plan) -> None:
    for extension in one(plan, PRICING, "defender-containers").inputs["extensions"]:
        if extension["name"] == "ContainerRegistriesVulnerabilityAssessments":
            extension["isEnabled"] = "False"


MUTATIONS: list[Mutation] = [
    Mutation("base-image-latest", CATEGORY, "The serving environment goes back to the base image's :latest tag.", _image(f"{BASE}:latest"), (IMAGES,)),
    Mutation("base-image-untagged", CATEGORY, "The base image is referenced without a tag.", _image(BASE), (IMAGES,)),
    Mutation(
        "base-image-mutable-tag",
        CATEGORY,
        "The base image is referenced by a version-like tag its publisher moves (22.04).",
        _image(f"{BASE}:22.04"),
        (IMAGES,),
    ),
    Mutation(
        "stack-registry-semver-tag",
        CATEGORY,
        "A CI-built image in the stack's registry is referenced by a tag that can be pushed again.",
        _image("crazmlprd3d136e.azurecr.io/credit-risk/scoring:1.4.2"),
        (IMAGES,),
    ),
    Mutation(
        "docker-hub-image",
        CATEGORY,
        "The serving environment runs a public Docker Hub image.",
        _image("docker.io/library/python:3.11-slim"),
        (IMAGES,),
    ),
    Mutation(
        "docker-build-context",
        CATEGORY,
        "The environment is built from a Docker context in a public repository (base image unverifiable).",
        _docker_build,
        (IMAGES,),
    ),
    Mutation(
        "defender-for-containers-removed",
        CATEGORY,
        "The Defender for Containers plan is dropped from governance: nothing scans the registry.",
        removal(PRICING, "defender-containers"),
        (SCAN_GATE, "azml-governance-defender-plans"),
    ),
    Mutation(
        "defender-for-containers-free",
        CATEGORY,
        "The Containers plan is set back to the Free tier.",
        setting(PRICING, "pricingTier", "Free", "defender-containers"),
        (SCAN_GATE, "azml-governance-defender-plans"),
    ),
    Mutation(
        "registry-scanning-extension-off",
        CATEGORY,
        "The plan stays on Standard but its registry vulnerability assessment extension is switched off.",
        _scanning_extension_off,
        (SCAN_GATE,),
    ),
    Mutation(
        "registry-export-enabled",
        CATEGORY,
        "policies.exportPolicy.status: enabled on the workspace registry (az acr import out of it).",
        setting(REGISTRY, "policies.exportPolicy.status", "enabled"),
        ("azml-registry-export-disabled",),
    ),
]
