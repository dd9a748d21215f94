"""Endpoint routing against a local ARM stand-in (tests/arm_server.py): the real
RoutingClient and EndpointRoutingProvider, the real azure-core pipeline,
bearer-token policy, ARM long-running-operation polling and TLS verification.
Nothing is mocked; the server enforces Azure's traffic rules, so a split the
code gets wrong is refused the way Azure would refuse it."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError

from azml.serving.routing import Routing, RoutingClient, endpoint_id
from azml.serving.routing_resource import EndpointRoutingProvider

from ..arm_server import ArmServer, arm_server  # noqa: F401  (arm_server is a fixture)

SUBSCRIPTION, GROUP, WORKSPACE = "00000000-0000-0000-0000-000000000001", "rg-azml-dev", "mlw-azml-dev"
ONLINE = endpoint_id(SUBSCRIPTION, GROUP, WORKSPACE, "scoring", "online")
BATCH = endpoint_id(SUBSCRIPTION, GROUP, WORKSPACE, "nightly", "batch")


class StaticCredential:
    """A TokenCredential. azure-core 1.41's bearer policy (which ARM's challenge
    policy extends) calls ``get_token_info`` only when the credential has it,
    else ``get_token(*scopes, **kwargs)`` - so ``get_token`` is all it needs."""

    def __init__(self, token: str = "test-token") -> None:
        self.token, self.scopes = token, []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


@pytest.fixture
def client(arm_server: ArmServer, credential: StaticCredential) -> RoutingClient:
    return RoutingClient(credential, base_url=arm_server.base_url, polling_interval=0)


@pytest.fixture
def provider(arm_server: ArmServer, credential: StaticCredential) -> EndpointRoutingProvider:
    # The provider's RoutingClient polls at its default 5 s, and azure-core reads
    # "Retry-After: 0" as "no hint" (falls back to that interval), so for
    # provider tests each operation reports its final status on the first poll.
    # The InProgress path is covered through RoutingClient(polling_interval=0).
    arm_server.in_progress_polls = 0
    return EndpointRoutingProvider(credential=credential)


def online(server: ArmServer, deployments, traffic, mirror_traffic=None, endpoint: str = ONLINE) -> dict[str, Any]:
    return {"endpointId": endpoint, "kind": "online", "deployments": list(deployments), "traffic": dict(traffic),
            "mirrorTraffic": dict(mirror_traffic or {}), "defaultDeployment": None, "armEndpoint": server.base_url}  # fmt: skip


def batch(server: ArmServer, deployments, default) -> dict[str, Any]:
    return {"endpointId": BATCH, "kind": "batch", "deployments": list(deployments), "traffic": {},
            "mirrorTraffic": {}, "defaultDeployment": default, "armEndpoint": server.base_url}  # fmt: skip


def split(server: ArmServer, endpoint: str = ONLINE) -> tuple[dict[str, int], dict[str, int]]:
    """The server's live and mirror split, 0 % entries dropped (as Azure routes)."""
    properties = server.properties(endpoint)
    return tuple({k: v for k, v in (properties.get(key) or {}).items() if v} for key in ("traffic", "mirrorTraffic"))


def writes(server: ArmServer) -> list[tuple[str, str]]:
    return server.calls("PUT", "PATCH", "POST", "DELETE")


def arm(server: ArmServer, method: str, path: str, *, api_version: str | None = "2025-12-01",
        authorization: str | None = "Bearer test-token", **kwargs: Any) -> requests.Response:
    """A plain HTTPS request to the server, as another ARM client would send it."""
    return requests.request(method, f"{server.base_url}{path}", verify=server.ca_file, timeout=10,
                            params={"api-version": api_version} if api_version else {},
                            headers={"Authorization": authorization} if authorization else {}, **kwargs)  # fmt: skip


def delete_deployment(server: ArmServer, name: str) -> requests.Response:
    return arm(server, "DELETE", f"{ONLINE}/deployments/{name}")


# ------------------------------------------------------------------ create / re-run


def test_create_applies_the_split_and_polls_the_operation(arm_server, provider, credential) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    result = provider.create(online(arm_server, ["blue", "green"], {"blue": 90, "green": 10}))

    assert result.id == f"{ONLINE}/routing"
    assert result.outs["lastApplyWrote"] is True
    assert split(arm_server) == ({"blue": 90, "green": 10}, {})
    assert arm_server.properties(ONLINE)["provisioningState"] == "Succeeded"
    calls = [(r.method, r.path.rsplit("/", 2)[-2], r.status) for r in arm_server.requests]
    assert calls == [("GET", "onlineEndpoints", 200), ("PUT", "onlineEndpoints", 201),
                     ("GET", "mfeOperationsStatus", 200), ("GET", "onlineEndpoints", 200)]  # fmt: skip
    put = next(r for r in arm_server.requests if r.method == "PUT")
    assert put.body["location"] == "westeurope" and put.body["tags"] == {"owner": "azml"}
    assert put.body["identity"] == {"type": "SystemAssigned"} and put.body["properties"]["authMode"] == "Key"
    assert put.query["api-version"] == ["2025-12-01"]
    # The token audience is the ARM endpoint in use (public cloud: management.azure.com).
    assert set(credential.scopes) == {(f"{arm_server.base_url}/.default",)}


def test_client_polls_an_in_progress_operation_until_it_succeeds(arm_server, client) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    arm_server.in_progress_polls = 2

    assert client.apply(ONLINE, Routing("online", {"blue": 50, "green": 50})) is True

    polls = [r for r in arm_server.requests if "mfeOperationsStatus" in r.path]
    assert len(polls) == 3  # InProgress, InProgress, Succeeded
    assert split(arm_server) == ({"blue": 50, "green": 50}, {})


def test_rerun_with_the_same_split_reads_only(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green"], {"blue": 90, "green": 10})
    provider.create(props)
    arm_server.requests.clear()

    assert provider.update(f"{ONLINE}/routing", props, props).outs["lastApplyWrote"] is False
    assert provider.create(props).outs["lastApplyWrote"] is False
    assert arm_server.calls() == [("GET", ONLINE), ("GET", ONLINE)]


# ------------------------------------------------------------------ walkthroughs


def test_canary_walkthrough(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue"])
    props = online(arm_server, ["blue"], {"blue": 100})
    assert provider.create(props).outs["lastApplyWrote"] is True
    assert split(arm_server) == ({"blue": 100}, {})

    arm_server.add_deployment(ONLINE, "green")  # green deployed, no traffic yet: nothing to write
    steps = [(["blue", "green"], {"blue": 100, "green": 0}, False), (["blue", "green"], {"blue": 90, "green": 10}, True),
             (["blue", "green"], {"blue": 0, "green": 100}, True)]  # fmt: skip
    for deployments, traffic, wrote in steps:
        olds, props = props, online(arm_server, deployments, traffic)
        assert provider.diff(f"{ONLINE}/routing", olds, props).replaces == []
        assert provider.update(f"{ONLINE}/routing", olds, props).outs["lastApplyWrote"] is wrote
        assert split(arm_server) == ({k: v for k, v in traffic.items() if v}, {})
        if traffic["blue"]:
            refused = delete_deployment(arm_server, "blue")
            assert refused.status_code == 400 and "receives traffic" in refused.json()["error"]["message"]

    # blue leaves the program: the split no longer names it, and Azure lets it go.
    olds, props = props, online(arm_server, ["green"], {"green": 100})
    assert provider.update(f"{ONLINE}/routing", olds, props).outs["lastApplyWrote"] is False
    assert delete_deployment(arm_server, "blue").status_code == 200
    listed = arm(arm_server, "GET", f"{ONLINE}/deployments").json()["value"]
    assert [deployment["name"] for deployment in listed] == ["green"]
    assert arm(arm_server, "GET", f"{ONLINE}/deployments/blue").status_code == 404
    assert split(arm_server) == ({"green": 100}, {})


def test_dropping_a_deployment_with_traffic_moves_it_off_before_the_delete(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 90, "green": 10})
    olds = online(arm_server, ["blue", "green"], {"blue": 90, "green": 10})
    provider.update(f"{ONLINE}/routing", olds, online(arm_server, ["green"], {"green": 100}))
    assert delete_deployment(arm_server, "blue").status_code == 200


def test_mirror_traffic_set_then_removed(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    mirrored = online(arm_server, ["blue", "green"], {"blue": 100}, {"green": 10})
    assert provider.create(mirrored).outs["lastApplyWrote"] is True
    assert split(arm_server) == ({"blue": 100}, {"green": 10})
    assert delete_deployment(arm_server, "green").status_code == 400  # mirrored traffic counts too

    plain = online(arm_server, ["blue", "green"], {"blue": 100})
    assert provider.update(f"{ONLINE}/routing", mirrored, plain).outs["lastApplyWrote"] is True
    assert split(arm_server) == ({"blue": 100}, {})
    assert provider.update(f"{ONLINE}/routing", plain, plain).outs["lastApplyWrote"] is False


# ------------------------------------------------------------------ the server's rules bite


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "message"),
    [
        ({"blue": 90}, {}, "must sum to 0 or 100"),
        ({"blue": 50, "ghost": 50}, {}, "'ghost', which does not exist"),
        ({"blue": 100}, {"ghost": 10}, "'ghost', which does not exist"),
        ({"blue": 100}, {"green": 60}, "cannot exceed 50%"),
        ({"blue": 50, "green": 50}, {"green": 10}, "has live traffic"),
        ({"blue": 100}, {"green": 10, "red": 10}, "one deployment only"),
    ],
)
def test_server_refuses_a_split_azure_refuses(arm_server, client, traffic, mirror_traffic, message) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green", "red"], traffic={"blue": 70, "green": 30})
    with pytest.raises(HttpResponseError) as raised:
        client.apply(ONLINE, Routing("online", traffic, mirror_traffic))
    assert raised.value.status_code == 400
    assert raised.value.error.code == "UserError" and message in raised.value.message
    assert split(arm_server) == ({"blue": 70, "green": 30}, {})


def test_server_refuses_read_only_fields_and_wants_an_api_version(arm_server) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue"], traffic={"blue": 100})
    echoed = arm(arm_server, "PUT", ONLINE, json=arm(arm_server, "GET", ONLINE).json())  # a GET body sent back as is
    assert echoed.status_code == 400 and echoed.json()["error"]["code"] == "BadRequest"
    assert "id, name, type, systemData" in echoed.json()["error"]["message"]
    unversioned = arm(arm_server, "GET", ONLINE, api_version=None)
    assert unversioned.status_code == 400 and unversioned.json()["error"]["code"] == "MissingApiVersionParameter"
    assert arm(arm_server, "GET", ONLINE.replace("scoring", "nope")).json()["error"]["code"] == "ResourceNotFound"


@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token", "Basic dGVzdA=="])
def test_server_answers_401_without_a_valid_bearer_token(arm_server, authorization) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue"], traffic={"blue": 100})
    response = arm(arm_server, "GET", ONLINE, authorization=authorization)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("AuthenticationFailed", "InvalidAuthenticationToken")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_client_with_a_rejected_token_gets_401(arm_server) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue"], traffic={"blue": 100})
    stranger = RoutingClient(StaticCredential("expired"), base_url=arm_server.base_url, polling_interval=0)
    with pytest.raises(HttpResponseError) as raised:
        stranger.read(ONLINE, "online")
    assert raised.value.status_code == 401


def test_tls_is_verified_against_the_test_ca(arm_server) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{arm_server.base_url}{ONLINE}", verify=requests.certs.where(), timeout=10)


# ------------------------------------------------------------------ check / diff


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "keys"),
    [
        ({"blue": 90}, {}, ["traffic"]),
        ({"blue": 90, "ghost": 10}, {}, ["traffic.ghost"]),
        ({"blue": 100}, {"green": 10, "red": 10}, ["mirrorTraffic"]),
        ({"blue": 100}, {"green": 60}, ["mirrorTraffic.green"]),
        ({"blue": 90, "green": 10}, {"green": 10}, ["mirrorTraffic.green"]),
        ({"blue": 100.5}, {}, ["traffic.blue"]),
    ],
)
def test_check_refuses_invalid_splits(arm_server, provider, traffic, mirror_traffic, keys) -> None:
    result = provider.check({}, online(arm_server, ["blue", "green", "red"], traffic, mirror_traffic))
    assert [failure.property for failure in result.failures] == keys


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic"),
    [({"blue": 100}, {}), ({"blue": 90, "green": 10}, {}), ({"blue": 100}, {"green": 50}), ({}, {}), ({"blue": 0}, {})],
)
def test_check_accepts_valid_splits(arm_server, provider, traffic, mirror_traffic) -> None:
    assert provider.check({}, online(arm_server, ["blue", "green"], traffic, mirror_traffic)).failures == []


def test_check_accepts_a_valid_split_as_pulumi_sends_it(arm_server, provider) -> None:
    from google.protobuf import struct_pb2
    from pulumi.runtime import rpc

    wire = struct_pb2.Struct()
    wire.update(online(arm_server, ["blue", "green"], {"blue": 90, "green": 10}))
    news = rpc.deserialize_properties(wire, True)  # what the dynamic-provider host hands to check()
    assert provider.check({}, news).failures == []


def test_diff(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 90, "green": 10})
    olds = online(arm_server, ["blue", "green"], {"blue": 90, "green": 10}, {})
    same = provider.diff("id", olds, dict(olds))
    assert same.changes is False and same.replaces == []
    assert provider.diff("id", olds, {**olds, "traffic": {"blue": 90, "green": 10, "red": 0}}).changes is False

    as_floats = {**olds, "traffic": {"blue": 90.0, "green": 10.0}}  # numbers come back from state as floats
    assert provider.diff("id", as_floats, olds).changes is False

    changed = provider.diff("id", olds, online(arm_server, ["blue", "green"], {"blue": 50, "green": 50}))
    assert changed.changes is True and changed.replaces == []

    other = online(arm_server, ["blue", "green"], {"blue": 90, "green": 10}, endpoint=ONLINE.replace("scoring", "x"))
    moved = provider.diff("id", olds, other)
    assert moved.changes is True and moved.replaces == ["endpointId"] and moved.delete_before_replace is True


# ------------------------------------------------------------------ read / delete


def test_read_returns_the_split_azure_has(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green"], {"blue": 100})
    provider.create(props)
    arm_server.set_properties(ONLINE, traffic={"blue": 80, "green": 20}, mirrorTraffic={})  # changed in the portal

    result = provider.read(f"{ONLINE}/routing", props)
    assert result.id == f"{ONLINE}/routing"
    assert result.outs["traffic"] == {"blue": 80, "green": 20} and result.outs["mirrorTraffic"] == {}
    assert result.outs["endpointId"] == ONLINE
    assert writes(arm_server) == []  # reading never writes

    arm_server.remove_endpoint(ONLINE)
    gone = provider.read(f"{ONLINE}/routing", props)
    assert gone.id is None
    assert arm_server.requests[-1].status == 404


def test_delete_routes_nothing_and_is_idempotent(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100}, mirror_traffic={"green": 20})
    props = online(arm_server, ["blue", "green"], {"blue": 100}, {"green": 20})

    provider.delete(f"{ONLINE}/routing", props)
    assert arm_server.properties(ONLINE)["traffic"] == {}  # sums to 0: no zero entries sent
    assert arm_server.properties(ONLINE)["mirrorTraffic"] == {}
    assert writes(arm_server) == [("PUT", ONLINE)]
    assert [delete_deployment(arm_server, name).status_code for name in ("blue", "green")] == [200, 200]

    arm_server.requests.clear()
    provider.delete(f"{ONLINE}/routing", props)
    assert arm_server.calls() == [("GET", ONLINE)]

    arm_server.remove_endpoint(ONLINE)
    provider.delete(f"{ONLINE}/routing", props)  # the endpoint is already gone: nothing to do
    assert writes(arm_server) == []


# ------------------------------------------------------------------ failures


def test_a_failed_operation_fails_create_and_changes_nothing(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    arm_server.fail_next_operation("InternalServerError", "Updating the endpoint failed.")
    props = online(arm_server, ["blue", "green"], {"blue": 90, "green": 10})

    with pytest.raises(HttpResponseError, match="Updating the endpoint failed") as raised:
        provider.create(props)
    assert raised.value.error.code == "InternalServerError"
    assert split(arm_server) == ({"blue": 100}, {})
    assert arm_server.properties(ONLINE)["provisioningState"] == "Failed"

    assert provider.create(props).outs["lastApplyWrote"] is True  # a retry goes through
    assert split(arm_server) == ({"blue": 90, "green": 10}, {})


def test_create_on_a_missing_endpoint_fails(arm_server, provider) -> None:
    with pytest.raises(Exception, match="does not exist"):
        provider.create(online(arm_server, ["blue"], {"blue": 100}))
    assert writes(arm_server) == []


# ------------------------------------------------------------------ batch


def test_batch_default_deployment(arm_server, provider, client) -> None:
    arm_server.add_batch_endpoint(BATCH, ["v1", "v2"], default="v1")
    props = batch(arm_server, ["v1", "v2"], "v2")
    assert provider.check({}, props).failures == []

    result = provider.create(props)
    assert result.id == f"{BATCH}/routing" and result.outs["lastApplyWrote"] is True
    assert arm_server.properties(BATCH)["defaults"] == {"deploymentName": "v2"}
    assert writes(arm_server) == [("PUT", BATCH)]

    arm_server.requests.clear()
    assert provider.update(f"{BATCH}/routing", props, props).outs["lastApplyWrote"] is False
    assert arm_server.calls() == [("GET", BATCH)]
    assert provider.read(f"{BATCH}/routing", props).outs["defaultDeployment"] == "v2"

    provider.delete(f"{BATCH}/routing", props)  # batch defaults need no clearing
    assert writes(arm_server) == []


def test_batch_unknown_default_is_refused_by_check_and_by_the_server(arm_server, provider, client) -> None:
    arm_server.add_batch_endpoint(BATCH, ["v1"], default="v1")
    failures = provider.check({}, batch(arm_server, ["v1"], "ghost")).failures
    assert [failure.property for failure in failures] == ["defaultDeployment"]

    with pytest.raises(HttpResponseError) as raised:
        client.apply(BATCH, Routing("batch", default_deployment="ghost"))
    assert raised.value.status_code == 400 and "'ghost' does not exist" in raised.value.message
    assert arm_server.properties(BATCH)["defaults"] == {"deploymentName": "v1"}


# ------------------------------------------------------------------ convergence after an endpoint write


def endpoint_put(server: ArmServer, body: dict[str, Any], endpoint: str = ONLINE) -> None:
    """A PUT of the endpoint as another client sends it, polled to the end."""
    started = arm(server, "PUT", endpoint, json=body)
    assert started.status_code == 201, started.text
    status_url = started.headers["Azure-AsyncOperation"]
    for _ in range(10):
        bearer = {"Authorization": "Bearer test-token"}
        polled = requests.get(status_url, headers=bearer, verify=server.ca_file, timeout=10)
        if polled.json()["status"] != "InProgress":
            assert polled.json()["status"] == "Succeeded"
            return
    raise AssertionError("the operation never finished")


#: The endpoint as the endpoint resource (azure-native OnlineEndpoint) PUTs it:
#: its own inputs, no traffic (the routing resource owns it, ignore_changes).
AZURE_NATIVE_ENDPOINT_PUT = {
    "location": "westeurope", "kind": "Managed", "identity": {"type": "SystemAssigned"}, "tags": {"owner": "azml"},
    "properties": {"authMode": "Key", "publicNetworkAccess": "Disabled", "description": "credit risk, v2 description"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic"), [({"blue": 90, "green": 10}, {}), ({"blue": 100}, {"green": 10})], ids=["split", "mirror"]
)
def test_an_endpoint_update_that_resets_the_split_is_repaired_on_the_next_diff(arm_server, provider, traffic, mirror_traffic):
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green"], traffic, mirror_traffic)
    outs = provider.create(props).outs
    assert split(arm_server) == (traffic, mirror_traffic)

    # pulumi up: the endpoint resource's update runs first (the routing resource
    # takes its id) and PUTs an endpoint without traffic: Azure drops the split.
    endpoint_put(arm_server, AZURE_NATIVE_ENDPOINT_PUT)
    assert split(arm_server) == ({}, {})
    assert arm_server.properties(ONLINE)["description"] == "credit risk, v2 description"

    # Then the routing resource: same inputs, but the live split differs.
    arm_server.requests.clear()
    result = provider.diff(f"{ONLINE}/routing", outs, props)
    assert result.changes is True and result.replaces == []
    assert arm_server.calls() == [("GET", ONLINE)]  # diff reads, never writes

    assert provider.update(f"{ONLINE}/routing", outs, props).outs["lastApplyWrote"] is True
    assert split(arm_server) == (traffic, mirror_traffic)
    put = next(r for r in arm_server.requests if r.method == "PUT")
    assert put.body["properties"]["description"] == "credit risk, v2 description"  # the endpoint's change is kept

    arm_server.requests.clear()
    assert provider.diff(f"{ONLINE}/routing", outs, props).changes is False  # converged
    assert writes(arm_server) == []


def test_a_replaced_endpoint_gets_its_split_back(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green"], {"blue": 80, "green": 20})
    outs = provider.create(props).outs

    arm_server.remove_endpoint(ONLINE)  # replaced: same name, so same id, created without a split
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"])
    assert provider.diff(f"{ONLINE}/routing", outs, props).changes is True
    provider.update(f"{ONLINE}/routing", outs, props)
    assert split(arm_server) == ({"blue": 80, "green": 20}, {})


def test_a_portal_change_is_drift_that_diff_reports(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green"], {"blue": 100})
    outs = provider.create(props).outs
    arm_server.set_properties(ONLINE, traffic={"blue": 50, "green": 50})
    assert provider.diff(f"{ONLINE}/routing", outs, props).changes is True
    arm_server.set_properties(ONLINE, traffic={"blue": 100, "green": 0})  # a 0 % entry is no drift
    assert provider.diff(f"{ONLINE}/routing", outs, props).changes is False


def test_a_missing_endpoint_is_drift_and_the_update_says_so(arm_server, provider) -> None:
    props = online(arm_server, ["blue"], {"blue": 100})
    assert provider.diff(f"{ONLINE}/routing", props, props).changes is True
    with pytest.raises(Exception, match="does not exist"):
        provider.update(f"{ONLINE}/routing", props, props)


def test_batch_default_reset_by_an_endpoint_update_is_repaired(arm_server, provider) -> None:
    arm_server.add_batch_endpoint(BATCH, ["v1", "v2"], default="v1")
    props = batch(arm_server, ["v1", "v2"], "v2")
    outs = provider.create(props).outs
    endpoint_put(arm_server, {"location": "westeurope", "properties": {"authMode": "AADToken"}}, BATCH)
    assert arm_server.properties(BATCH).get("defaults") is None
    assert provider.diff(f"{BATCH}/routing", outs, props).changes is True
    provider.update(f"{BATCH}/routing", outs, props)
    assert arm_server.properties(BATCH)["defaults"] == {"deploymentName": "v2"}


def test_an_endpoint_revision_change_reapplies_without_reading_first(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue"], traffic={"blue": 100})
    olds = {**online(arm_server, ["blue"], {"blue": 100}), "endpointRevision": "2025-01-01T00:00:00Z"}
    news = {**olds, "endpointRevision": "2025-02-01T00:00:00Z"}
    assert provider.diff(f"{ONLINE}/routing", olds, news).changes is True
    assert arm_server.calls() == []  # an input changed: no need to ask Azure
    assert provider.update(f"{ONLINE}/routing", olds, news).outs["lastApplyWrote"] is False  # in place already


def test_preview_with_unknowns_calls_no_one(arm_server, provider) -> None:
    from pulumi.runtime.rpc import UNKNOWN

    arm_server.add_online_endpoint(ONLINE, ["blue"], traffic={"blue": 100})
    olds = {**online(arm_server, ["blue"], {"blue": 100}), "endpointRevision": "2025-01-01T00:00:00Z"}
    updated = provider.diff(f"{ONLINE}/routing", olds, {**olds, "endpointRevision": UNKNOWN})
    assert updated.changes is True and updated.replaces == []
    replaced = provider.diff(f"{ONLINE}/routing", olds, {**olds, "endpointId": UNKNOWN})
    assert replaced.changes is True and replaced.replaces == ["endpointId"]
    assert arm_server.calls() == []


# ------------------------------------------------------------------ no zero entries


def test_zero_entries_are_never_sent(arm_server, provider) -> None:
    arm_server.add_online_endpoint(ONLINE, ["blue", "green", "red"], traffic={"blue": 100})
    props = online(arm_server, ["blue", "green", "red"], {"blue": 0, "green": 100, "red": 0}, {"blue": 10, "red": 0})
    provider.create(props)
    put = next(r for r in arm_server.requests if r.method == "PUT")
    assert put.body["properties"]["traffic"] == {"green": 100}
    assert put.body["properties"]["mirrorTraffic"] == {"blue": 10}

    arm_server.requests.clear()
    provider.delete(f"{ONLINE}/routing", props)
    put = next(r for r in arm_server.requests if r.method == "PUT")
    assert put.body["properties"]["traffic"] == {} and put.body["properties"]["mirrorTraffic"] == {}


# ------------------------------------------------------------------ credentials, as azure-native reads them

TENANT, CLIENT = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
_CREDENTIAL_VARIABLES = ("ARM_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_", "ACTIONS_ID_TOKEN_")


@pytest.fixture
def signed_in(arm_server, monkeypatch) -> ArmServer:
    """A clean credential environment pointing at the stand-in as a custom
    cloud (authority, ARM endpoint and audience), as azure-native reads it."""
    import os

    for name in list(os.environ):
        if name.startswith(_CREDENTIAL_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ARM_ACTIVE_DIRECTORY_AUTHORITY_HOST", arm_server.authority)
    monkeypatch.setenv("ARM_RESOURCE_MANAGER_ENDPOINT", arm_server.base_url)
    monkeypatch.setenv("ARM_RESOURCE_MANAGER_AUDIENCE", arm_server.base_url)
    monkeypatch.setenv("ARM_DISABLE_INSTANCE_DISCOVERY", "true")  # no login.microsoftonline.com offline
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", SUBSCRIPTION)
    arm_server.add_online_endpoint(ONLINE, ["blue", "green"], traffic={"blue": 100})
    arm_server.in_progress_polls = 0
    return arm_server


def from_environment(server: ArmServer) -> dict[str, Any]:
    """Create, diff and read with a provider that builds its own credential."""
    provider = EndpointRoutingProvider()  # as Pulumi builds it: no credential given
    props = online(server, ["blue", "green"], {"blue": 90, "green": 10})
    outs = provider.create(props).outs
    assert provider.diff(f"{ONLINE}/routing", outs, props).changes is False
    assert split(server) == ({"blue": 90, "green": 10}, {})
    return server.issued[-1]


def test_client_secret_from_arm_variables(signed_in, monkeypatch) -> None:
    signed_in.add_app(TENANT, CLIENT, secret="s3cret")
    monkeypatch.setenv("ARM_TENANT_ID", TENANT)
    monkeypatch.setenv("ARM_CLIENT_ID", CLIENT)
    monkeypatch.setenv("ARM_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("ARM_USE_OIDC", "true")  # azure-native: a secret wins over OIDC
    assert from_environment(signed_in) == {"via": "secret", "client_id": CLIENT, "tenant": TENANT,
                                           "scope": f"{signed_in.base_url}/.default"}  # fmt: skip
    assert len(signed_in.issued) == 1  # one credential per provider, its token reused


def test_oidc_token_from_arm_variables(signed_in, monkeypatch) -> None:
    signed_in.add_app(TENANT, CLIENT, federated_token="id-token-from-the-pipeline")
    for name, value in {"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_USE_OIDC": "true",
                        "ARM_OIDC_TOKEN": "id-token-from-the-pipeline"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert from_environment(signed_in)["via"] == "federated"


def test_oidc_token_file_from_arm_variables(signed_in, monkeypatch, tmp_path) -> None:
    signed_in.add_app(TENANT, CLIENT, federated_token="id-token-in-a-file")
    (token_file := tmp_path / "oidc-token").write_text("id-token-in-a-file\n")
    for name, value in {"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_USE_OIDC": "true",
                        "ARM_OIDC_TOKEN_FILE_PATH": str(token_file)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert from_environment(signed_in)["via"] == "federated"


def test_github_actions_oidc_exchange(signed_in, monkeypatch) -> None:
    """deploy.yml sets ARM_USE_OIDC/ARM_CLIENT_ID/ARM_TENANT_ID; GitHub sets
    the token-request variables; the ID token is asked for the federated audience."""
    signed_in.add_app(TENANT, CLIENT, federated_token="github-id-token")
    signed_in.enable_github_oidc("runner-request-token", "github-id-token")
    for name, value in {"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_USE_OIDC": "true",
                        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{signed_in.base_url}/github/idtoken",
                        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert from_environment(signed_in)["via"] == "federated"
    asked = [r for r in signed_in.requests if r.path == "/github/idtoken"]
    assert asked and asked[0].query["audience"] == ["api://AzureADTokenExchange"]


def test_user_assigned_managed_identity_from_arm_variables(signed_in, monkeypatch) -> None:
    signed_in.enable_managed_identity("identity-header", client_id=CLIENT)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{signed_in.base_url}/msi/token")  # as App Service sets them
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header")
    monkeypatch.setenv("ARM_USE_MSI", "true")
    monkeypatch.setenv("ARM_CLIENT_ID", CLIENT)
    assert from_environment(signed_in)["via"] == "managed-identity"


def test_azure_variables_through_default_azure_credential(signed_in, monkeypatch) -> None:
    """No ARM_* sign-in variables: DefaultAzureCredential, whose
    EnvironmentCredential reads AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET."""
    signed_in.add_app(TENANT, CLIENT, secret="azure-secret")
    custom_cloud = ("ARM_ACTIVE_DIRECTORY_AUTHORITY_HOST", "ARM_RESOURCE_MANAGER_ENDPOINT", "ARM_RESOURCE_MANAGER_AUDIENCE")
    for name in custom_cloud:
        monkeypatch.delenv(name)
    for name, value in {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": "azure-secret",
                        "AZURE_AUTHORITY_HOST": signed_in.authority}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert from_environment(signed_in) == {"via": "secret", "client_id": CLIENT, "tenant": TENANT,
                                           "scope": f"{signed_in.base_url}/.default"}  # fmt: skip


def test_a_wrong_secret_fails_before_any_arm_call(signed_in, monkeypatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    signed_in.add_app(TENANT, CLIENT, secret="right")
    for name, value in {"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_CLIENT_SECRET": "wrong"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ClientAuthenticationError, match="Invalid client secret"):
        EndpointRoutingProvider().create(online(signed_in, ["blue", "green"], {"blue": 90, "green": 10}))
    assert [r.path for r in signed_in.requests if "onlineEndpoints" in r.path] == []


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ARM_CLIENT_ID": CLIENT, "ARM_CLIENT_SECRET": "x"}, "ARM_TENANT_ID must be set when authenticating with a client secret"),  # fmt: skip
        ({"ARM_TENANT_ID": TENANT, "ARM_USE_OIDC": "true"}, "ARM_CLIENT_ID must be set when authenticating with OIDC"),
        ({"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_USE_OIDC": "true"}, "no ID token is given"),
        ({"ARM_ENVIRONMENT": "mars"}, "unknown cloud 'mars'"),
    ],
)
def test_incomplete_arm_variables_name_what_is_missing(variables, message) -> None:
    from azml.azure_client import CredentialConfigError, credential_from_environment

    with pytest.raises(CredentialConfigError, match=message):
        credential_from_environment(variables)


@pytest.mark.parametrize(
    ("variables", "arm_endpoint"),
    [
        ({}, "https://management.azure.com"),
        ({"ARM_ENVIRONMENT": "usgovernment"}, "https://management.usgovcloudapi.net"),
        ({"AZURE_ENVIRONMENT": "AzureChinaCloud"}, "https://management.chinacloudapi.cn"),
        ({"ARM_RESOURCE_MANAGER_ENDPOINT": "https://arm.example"}, "https://management.azure.com"),  # needs all three
    ],
)
def test_cloud_from_environment(variables, arm_endpoint) -> None:
    from azml.azure_client import cloud_from_environment

    assert cloud_from_environment(variables).arm_endpoint == arm_endpoint


def test_a_used_provider_still_pickles_without_its_credential(signed_in, monkeypatch) -> None:
    import dill

    signed_in.add_app(TENANT, CLIENT, secret="s3cret")
    for name, value in {"ARM_TENANT_ID": TENANT, "ARM_CLIENT_ID": CLIENT, "ARM_CLIENT_SECRET": "s3cret"}.items():
        monkeypatch.setenv(name, value)
    provider = EndpointRoutingProvider()
    provider.read(f"{ONLINE}/routing", online(signed_in, ["blue"], {"blue": 100}))
    assert provider._credential._built is not None
    copy = dill.loads(dill.dumps(provider))
    assert copy._credential._built is None and b"s3cret" not in dill.dumps(provider)
