"""Secrets slipped into the program: keys, passwords, signatures and tokens
pasted into settings, tags, descriptions and definitions "just for now", and
Pulumi secrets handed to the one place Azure shows them anyway.

Each names ``azml-secret-values`` (a secret by value or by name, anywhere) or
``azml-deployment-no-plaintext-secrets`` (a Pulumi secret in an ML
deployment's environment variables, which Azure ML writes into the deployment
definition). The values are realistic in shape and fake.
"""

from __future__ import annotations

from typing import Any, Callable

from azml.plan.model import Plan

from . import Mutation, one, put

ML = "azure-native:machinelearningservices:"
ONLINE_DEPLOYMENT = ML + "OnlineDeployment"
BATCH_DEPLOYMENT = ML + "BatchDeployment"
SCHEDULE = ML + "Schedule"
WORKSPACE = ML + "Workspace"
WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
ROUTING = "pulumi-python:dynamic/azml:EndpointRouting"

VALUES = "azml-secret-values"
DEPLOYMENT_VARIABLES = "azml-deployment-no-plaintext-secrets"

ACCOUNT = "stazmlprd3d136e"
STORAGE_KEY = "q7Z3vT0pXk2mN9bR4wYc8sLf1hJd6gKa5eUi0oPn3yMx7tBv2rQw9zAe4sDf6gHj8kLm1nBv5cXz3aSd7fGh0jK=="
SAS_QUERY = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2026-01-01T00:00:00Z&spr=https&sig=Xq4mZ9pL2vR7tK1wN8bY3cF6hJ0dG5sA%2Bk%3D"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
    "-----END RSA PRIVATE KEY-----\n"
)
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL21sLmF6dXJlLmNvbSIsIm9pZCI6IjEyMyJ9"
    ".VGhpc0lzTm90QVJlYWxTaWduYXR1cmVCdXRJdExvb2tzTGlrZU9uZQ"
)


def _app_setting(name: str, value: str) -> Callable[[Plan], None]:
    return lambda plan: one(plan, WEB_APP).inputs["siteConfig"]["appSettings"].append({"name": name, "value": value})


def _env(type_token: str, name: str, value: Any) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        one(plan, type_token).inputs["properties"].setdefault("environmentVariables", {})[name] = value

    return mutate


def _input(type_token: str, path: str, value: Any, name: str | None = None) -> Callable[[Plan], None]:
    return lambda plan: put(one(plan, type_token, name).inputs, path, value)


def _secret(mutation_id: str, description: str, apply: Callable[[Plan], None], *caught_by: str) -> Mutation:
    return Mutation(id=mutation_id, category="secrets", description=description, apply=apply, caught_by=caught_by or (VALUES,))


MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------------ the function app's settings
    _secret(
        "function-storage-connection-string-with-key",
        "The retraining function's host storage setting becomes a classic connection string with the account key "
        "instead of the identity-based AzureWebJobsStorage__accountName.",
        _app_setting(
            "AzureWebJobsStorage",
            f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net",
        ),
    ),
    _secret(
        "function-training-data-sas-url",
        "The function reads training data through a pasted SAS URL setting.",
        _app_setting("TRAINING_DATA_URL", f"https://{ACCOUNT}.blob.core.windows.net/training-data?{SAS_QUERY}"),
    ),
    _secret(
        "function-servicebus-shared-access-key",
        "A Service Bus connection string with its shared access key is added for a new trigger.",
        _app_setting(
            "ServiceBusConnection",
            "Endpoint=sb://sb-azml-prd.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=k3Yv4lu3Abc0123456789PqRsTuVwXyZ+/abcdefgh=",
        ),
    ),
    _secret(
        "function-sql-password",
        "A feature-store SQL connection string with a password, named *_CONN_STR.",
        _app_setting(
            "FEATURE_DB_CONN_STR",
            "Server=tcp:sql-azml.database.windows.net,1433;Database=features;User ID=retrain;Password=Tr0ub4dor&3-Horse!",
        ),
    ),
    _secret(
        "function-literal-client-secret",
        "An app registration's client secret is set as a plain function setting.",
        _app_setting("AZURE_CLIENT_SECRET", "Kx28Q~Wm3.nB7-vC1_xZ9~lK4jH6gF2dS5aP0oI8"),
    ),
    # ------------------------------------------------------------------ ML deployments
    _secret(
        "deployment-literal-api-key",
        "The scoring deployment gets a vendor API key as a literal environment variable.",
        _env(ONLINE_DEPLOYMENT, "VENDOR_API_KEY", "vendor-7f3k-92mq-x81z-0c4d"),
    ),
    _secret(
        "deployment-postgres-url-with-password",
        "The scoring deployment reads features from a PostgreSQL URL carrying its password.",
        _env(ONLINE_DEPLOYMENT, "FEATURES_URL", "postgresql://scorer:Tr0ub4dor3@pg-azml.postgres.database.azure.com:5432/features"),
    ),
    _secret(
        "deployment-pulumi-secret-in-environment",
        "A password is passed to the scoring deployment as a Pulumi secret: encrypted in the state, but written into "
        "the deployment definition in plain text.",
        _env(ONLINE_DEPLOYMENT, "FEATURE_DB_PASSWORD", "[secret]"),
        DEPLOYMENT_VARIABLES,
    ),
    _secret(
        "batch-deployment-github-token",
        "The nightly batch deployment pulls a private package with a GitHub token in its environment.",
        _env(BATCH_DEPLOYMENT, "PIP_EXTRA_INDEX_TOKEN", "ghp_R8q7P6o5N4m3L2k1J0i9H8g7F6e5D4c3B2a1"),
    ),
    # ------------------------------------------------------------------ tags, descriptions, definitions
    _secret(
        "vault-tag-with-private-key",
        "A deploy key is parked in a tag of the Key Vault \"until the pipeline can read it\".",
        _input(VAULT, "tags.bootstrap-key", PEM),
    ),
    _secret(
        "workspace-tag-sas-token",
        "A SAS token for the data export is recorded as a workspace tag.",
        _input(WORKSPACE, "tags.export-sas", SAS_QUERY),
    ),
    _secret(
        "role-assignment-description-with-token",
        "A role assignment's description records the bearer token used to test it.",
        _input(ROLE_ASSIGNMENT, "description", f"verified with Bearer {JWT}", "ra-compute-registry-acrpull"),
    ),
    _secret(
        "monitor-schedule-description-with-sas",
        "The drift monitor's description links the reference data with its SAS URL.",
        _input(SCHEDULE, "properties.description", f"reference data: https://{ACCOUNT}.blob.core.windows.net/ref/credit.csv?{SAS_QUERY}"),
    ),
    _secret(
        "monitor-schedule-webhook-with-password",
        "The drift monitor's notification settings get a webhook URL with basic-auth credentials.",
        _input(
            SCHEDULE,
            "properties.action.monitorDefinition.alertNotificationSettings.webhookUrl",
            "https://alerts:Tr0ub4dor3@hooks.example.com/azml",
        ),
    ),
    _secret(
        "routing-input-client-secret",
        "The traffic-routing dynamic resource is handed a client secret as a plain input.",
        _input(ROUTING, "clientSecret", "Kx28Q~Wm3.nB7-vC1_xZ9~lK4jH6gF2dS5aP0oI8", "credit-risk-endpoint-traffic"),
    ),
    _secret(
        "policy-assignment-description-with-storage-key",
        "A policy assignment's description carries the storage connection string used to test its effect.",
        _input(
            POLICY_ASSIGNMENT,
            "description",
            f"tested against DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={STORAGE_KEY}",
            "policy-storage-no-public-network",
        ),
    ),
]
