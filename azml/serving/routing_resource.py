"""``EndpointRouting``: a Pulumi dynamic resource owning an endpoint's routing.

Lifecycle, as Pulumi drives it:

- create/update: GET the endpoint, PUT it back with the desired split only if
  it differs (a re-run with nothing changed sends no write);
- diff: a change of split is an in-place update; a different endpoint is a
  replacement;
- read (``pulumi refresh``): the split Azure currently has;
- delete: route nothing (0 % everywhere, no mirror), so the deployments —
  deleted after this resource, since it depends on them — can go, and the
  endpoint is never left pointing at a missing deployment.

The provider runs in Pulumi's dynamic-provider host, in this project's
virtualenv, and authenticates with ``DefaultAzureCredential`` (Azure CLI
login locally, workload identity in CI).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from .routing import ARM_ENDPOINT, Routing, RoutingClient
from .rules import traffic_problems

_ROUTING_KEYS = ("traffic", "mirrorTraffic", "defaultDeployment")
_IDENTITY_KEYS = ("endpointId", "kind", "armEndpoint")


def _whole(split: Mapping[str, Any] | None) -> dict[str, Any]:
    """The provider host hands numbers over as floats (90.0): make whole ones ints."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in (split or {}).items()}


def routing_of(props: Mapping[str, Any]) -> Routing:
    return Routing(
        kind=props["kind"],
        traffic={k: int(v) for k, v in (props.get("traffic") or {}).items()},
        mirror_traffic={k: int(v) for k, v in (props.get("mirrorTraffic") or {}).items()},
        default_deployment=props.get("defaultDeployment"),
    )


class EndpointRoutingProvider(ResourceProvider):
    """``credential`` and ``polling_interval`` are for tests; in Pulumi the
    credential stays ``None`` and ``DefaultAzureCredential`` is created in the
    provider host."""

    def __init__(self, credential: Any = None, polling_interval: float = 5.0) -> None:
        super().__init__()
        self._credential = credential
        self._polling_interval = polling_interval

    def _client(self, props: Mapping[str, Any]) -> RoutingClient:
        credential = self._credential
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return RoutingClient(
            credential, base_url=props.get("armEndpoint") or ARM_ENDPOINT, polling_interval=self._polling_interval
        )

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("kind") not in ("online", "batch"):
            failures.append(CheckFailure("kind", "must be 'online' or 'batch'"))
        elif news["kind"] == "online":
            failures += [
                CheckFailure(key, message)
                for key, message in traffic_problems(
                    _whole(news.get("traffic")), _whole(news.get("mirrorTraffic")), news.get("deployments") or []
                )
            ]
        elif news.get("defaultDeployment") not in (news.get("deployments") or []):
            failures.append(CheckFailure("defaultDeployment", "must name one of the endpoint's deployments"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        wrote = self._client(props).apply(props["endpointId"], routing_of(props))
        return CreateResult(id_=f"{props['endpointId']}/routing", outs={**props, "lastApplyWrote": wrote})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in _IDENTITY_KEYS if olds.get(key) != news.get(key)]
        # State round-trips numbers as floats: compare normalised routings.
        old, new = routing_of(olds).to_dict(), routing_of(news).to_dict()
        changed = [key for key in _ROUTING_KEYS if old[key] != new[key]]
        if list(olds.get("deployments") or []) != list(news.get("deployments") or []):
            changed.append("deployments")
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=bool(replaces))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        wrote = self._client(news).apply(news["endpointId"], routing_of(news))
        return UpdateResult(outs={**news, "lastApplyWrote": wrote})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        current = self._client(props).read(props["endpointId"], props["kind"])
        if current is None:
            return ReadResult(id_=None, outs={})  # the endpoint is gone: so is its routing
        as_props = current.to_dict()
        return ReadResult(
            id_=id_,
            outs={
                **props,
                "traffic": as_props["traffic"],
                "mirrorTraffic": as_props["mirrorTraffic"],
                "defaultDeployment": as_props["defaultDeployment"],
            },
        )

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self._client(props).clear(props["endpointId"], props["kind"])


class EndpointRouting(pulumi.dynamic.Resource, module="azml", name="EndpointRouting"):
    """The live/mirror split of an online endpoint, or the default deployment
    of a batch endpoint. Give it ``depends_on`` every deployment it names."""

    traffic: pulumi.Output[dict]
    mirrorTraffic: pulumi.Output[dict]
    defaultDeployment: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        *,
        endpoint_id: pulumi.Input[str],
        kind: str,
        deployments: Sequence[str],
        traffic: Mapping[str, int] | None = None,
        mirror_traffic: Mapping[str, int] | None = None,
        default_deployment: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            EndpointRoutingProvider(),
            name,
            {
                "endpointId": endpoint_id,
                "kind": kind,
                "deployments": list(deployments),
                "traffic": dict(traffic or {}),
                "mirrorTraffic": dict(mirror_traffic or {}),
                "defaultDeployment": default_deployment,
                "armEndpoint": ARM_ENDPOINT,
            },
            opts,
        )
