"""``EndpointRouting``: a Pulumi dynamic resource owning an endpoint's routing.

Lifecycle, as Pulumi drives it:

- create/update: GET the endpoint, PUT it back with the desired split only if
  it differs (a re-run with nothing changed sends no write); 0 % entries are
  never sent;
- diff: a change of split, of deployments or of ``endpointRevision`` is an
  in-place update; a different endpoint is a replacement. With nothing changed
  in the program, diff GETs the endpoint and compares the live
  ``traffic``/``mirrorTraffic`` (batch: ``defaults.deploymentName``) with the
  configured one: any difference is an update, so ``pulumi up`` converges.
  This is what repairs the split after the endpoint resource's own PUT (built
  without ``traffic``) has reset it, after the endpoint was replaced, or after
  a change in the portal. ``pulumi up`` computes diffs as it goes, and this
  resource's diff waits for its endpoint's step (it takes the endpoint's id),
  so it sees the endpoint as that step left it;
- read (``pulumi refresh``): the split Azure currently has;
- delete: route nothing (0 % everywhere, no mirror), so the deployments —
  deleted after this resource, since it depends on them — can go, and the
  endpoint is never left pointing at a missing deployment.

The provider runs in Pulumi's dynamic-provider host, in this project's
virtualenv, and signs in as the azure-native provider does, from the same
``ARM_*`` variables (``azml.azure_client.credential_from_environment``),
falling back to ``DefaultAzureCredential`` (``AZURE_*``, workload identity,
managed identity, Azure CLI). Nothing unpicklable is kept on the provider:
Pulumi pickles it at registration; the credential is made in the host.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.runtime.rpc import UNKNOWN

from ..azure_client import ProviderCredential, cloud_from_environment
from .routing import Routing, RoutingClient, nonzero
from .rules import traffic_problems

_ROUTING_KEYS = ("traffic", "mirrorTraffic", "defaultDeployment")
_IDENTITY_KEYS = ("endpointId", "kind", "armEndpoint")
#: An input that changes whenever the endpoint resource is written (e.g. its
#: ``systemData.lastModifiedAt``): an update, so the split is re-applied.
_REVISION = "endpointRevision"


def _whole(split: Mapping[str, Any] | None) -> dict[str, Any]:
    """The provider host hands numbers over as floats (90.0): make whole ones ints."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in (split or {}).items()}


def _unknown(value: Any) -> bool:
    """Whether a preview value is not known yet (anywhere inside it)."""
    if value == UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_unknown(v) for v in value)
    return False


def routing_of(props: Mapping[str, Any]) -> Routing:
    return Routing(
        kind=props["kind"],
        traffic={k: int(v) for k, v in (props.get("traffic") or {}).items()},
        mirror_traffic={k: int(v) for k, v in (props.get("mirrorTraffic") or {}).items()},
        default_deployment=props.get("defaultDeployment"),
    )


class EndpointRoutingProvider(ResourceProvider):
    """``credential`` and ``polling_interval`` are for tests; in Pulumi the
    credential stays ``None`` and is built in the provider host from the
    environment, once per host process."""

    def __init__(self, credential: Any = None, polling_interval: float = 5.0) -> None:
        super().__init__()
        self._credential = ProviderCredential(credential)
        self._polling_interval = polling_interval

    def _client(self, props: Mapping[str, Any]) -> RoutingClient:
        return RoutingClient(**self._credential.client_args(props), polling_interval=self._polling_interval)

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
        if replaces:
            return DiffResult(changes=True, replaces=replaces, delete_before_replace=True)
        if _unknown(news):  # preview, the endpoint about to change: re-apply after it
            return DiffResult(changes=True, replaces=[], delete_before_replace=False)
        if self.changed_inputs(olds, news) or self.drifted(news):
            return DiffResult(changes=True, replaces=[], delete_before_replace=False)
        return DiffResult(changes=False, replaces=[], delete_before_replace=False)

    @staticmethod
    def changed_inputs(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        """Inputs that differ, comparing splits as Azure does (state
        round-trips numbers as floats; a 0 % entry equals no entry)."""
        old, new = routing_of(olds), routing_of(news)
        changed = []
        if nonzero(old.traffic) != nonzero(new.traffic):
            changed.append("traffic")
        if nonzero(old.mirror_traffic) != nonzero(new.mirror_traffic):
            changed.append("mirrorTraffic")
        if old.default_deployment != new.default_deployment:
            changed.append("defaultDeployment")
        if list(olds.get("deployments") or []) != list(news.get("deployments") or []):
            changed.append("deployments")
        if olds.get(_REVISION) != news.get(_REVISION):
            changed.append(_REVISION)
        return changed

    def drifted(self, props: Mapping[str, Any]) -> bool:
        """Whether the live endpoint's routing differs from ``props`` (a
        missing endpoint counts: the update then says so)."""
        live = self._client(props).read(props["endpointId"], props["kind"])
        return live is None or not live.same_as(routing_of(props))

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
    of a batch endpoint. Give it ``depends_on`` every deployment it names.

    ``endpoint_revision``: any output of the endpoint resource that changes
    whenever Pulumi writes the endpoint (its ``system_data.last_modified_at``):
    each change re-applies the split, and ``pulumi preview`` shows the routing
    update beside the endpoint's. Without it the split still converges (diff
    compares with the live endpoint), but only ``up`` shows the update."""

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
        endpoint_revision: pulumi.Input[Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "endpointId": endpoint_id,
            "kind": kind,
            "deployments": list(deployments),
            "traffic": dict(traffic or {}),
            "mirrorTraffic": dict(mirror_traffic or {}),
            "defaultDeployment": default_deployment,
            # The cloud azure-native deploys to (ARM_ENVIRONMENT, or a custom
            # cloud's ARM_RESOURCE_MANAGER_ENDPOINT); public by default.
            "armEndpoint": cloud_from_environment().arm_endpoint,
        }
        if endpoint_revision is not None:
            props[_REVISION] = endpoint_revision
        super().__init__(EndpointRoutingProvider(), name, props, opts)
