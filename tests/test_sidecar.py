"""Sidecar mode: the same grants on a mesh of Envoy sidecars, through an Istio egress gateway
(seed 001's objects, seed 003's visibility)."""

from __future__ import annotations

import pytest

from stack import ConfigError, parse_config
from tools.mock_engine import Cluster, ReadRefused, RecordingMocks, run_program

from .support import DEV_LOAD_BALANCERS, P, dev_values, objects, run, stack_values

GATEWAY_HOST = "istio-egressgateway.istio-system.svc.cluster.local"
SELECTOR = {"matchLabels": {"istio": "egressgateway"}}
HTTPBIN = {"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP", "name": "http"}],
           "tlsOrigination": True, "requestHeaders": {"x-egress": "audited"}}


@pytest.fixture(scope="module")
def dev():
    return run(dev_values(dataplane="sidecar"))


@pytest.fixture(scope="module")
def httpbin():
    return run({"databases": [], "services": [HTTPBIN], "dataplane": "sidecar", "grants": [
        {"namespace": "apps", "services": [{"name": "httpbin", "serviceAccounts": ["admin"]},
                                          {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]}]}]}, {})


def test_a_database_gets_a_service_entry_seen_only_by_the_gateway_and_its_grantees(dev):
    entry = objects(dev, "ServiceEntry")["istio-egress/postgres-1"]
    assert entry["spec"]["exportTo"] == [".", "istio-system", "rds-demo-1"]
    assert entry["spec"]["resolution"] == "DNS"
    assert entry["spec"]["addresses"] == ["203.0.113.10"]
    assert "istio.io/use-waypoint" not in entry["metadata"]["labels"]


def test_the_hop_from_sidecar_to_gateway_is_mutual_tls_with_the_hosts_sni(dev):
    server = objects(dev, "Gateway")["istio-egress/egress-postgres-1"]["spec"]
    assert server == {"selector": {"istio": "egressgateway"}, "servers": [{
        "port": {"number": 443, "name": "tls-postgres-1", "protocol": "TLS"}, "hosts": ["203.0.113.10.nip.io"],
        "tls": {"mode": "ISTIO_MUTUAL"}}]}
    subset = objects(dev, "DestinationRule")["istio-system/postgres-1-via-egress-gateway"]["spec"]
    assert subset["host"] == GATEWAY_HOST
    assert subset["exportTo"] == ["*"]
    assert subset["subsets"] == [{"name": "postgres-1", "trafficPolicy": {"portLevelSettings": [
        {"port": {"number": 443}, "tls": {"mode": "ISTIO_MUTUAL", "sni": "203.0.113.10.nip.io"}}]}}]


def test_a_tcp_database_is_routed_from_the_sidecars_to_the_gateway_and_from_the_gateway_out(dev):
    route = objects(dev, "VirtualService")["istio-egress/postgres-1-through-egress-gateway"]["spec"]
    assert route["gateways"] == ["istio-egress/egress-postgres-1", "mesh"]
    assert route["tcp"] == [
        {"match": [{"gateways": ["mesh"], "port": 5432}],
         "route": [{"destination": {"host": GATEWAY_HOST, "subset": "postgres-1", "port": {"number": 443}}}]},
        {"match": [{"gateways": ["istio-egress/egress-postgres-1"], "port": 443}],
         "route": [{"destination": {"host": "203.0.113.10.nip.io", "port": {"number": 5432}}}]},
    ]


def test_the_gateway_is_closed_by_a_baseline_and_opened_per_grant_by_namespace_and_sni(dev):
    policies = objects(dev, "AuthorizationPolicy")
    assert policies["istio-system/istio-egress-egress-allow-nothing"]["spec"] == {"selector": SELECTOR, "action": "ALLOW"}
    assert policies["istio-system/allow-postgres-1-from-rds-demo-1"]["spec"] == {
        "selector": SELECTOR, "action": "ALLOW",
        "rules": [{"from": [{"source": {"namespaces": ["rds-demo-1"]}}],
                   "when": [{"key": "connection.sni", "values": ["203.0.113.10.nip.io"]}]}]}
    assert not [key for key in policies if key.startswith("istio-egress/")]


def test_each_client_namespace_sees_only_what_it_was_granted_under_registry_only(dev):
    sidecars = {key: value["spec"] for key, value in objects(dev, "Sidecar").items()}
    assert sidecars["rds-demo-1/egress-visibility"] == {
        "egress": [{"hosts": ["./*", "*/*.svc.cluster.local", f"istio-system/{GATEWAY_HOST}",
                              "istio-egress/203.0.113.10.nip.io"]}],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    assert "istio-egress/203.0.113.10.nip.io" not in sidecars["rds-demo-2/egress-visibility"]["egress"][0]["hosts"]


def test_client_namespaces_are_labelled_for_injection_not_ambient(dev):
    labels = {name: namespace["metadata"]["labels"] for name, namespace in objects(dev, "Namespace").items()}
    assert labels["rds-demo-1"]["istio-injection"] == "enabled"
    assert "istio.io/dataplane-mode" not in labels["rds-demo-1"]
    patches = objects(run(stack_values("prod", dataplane="sidecar"), {}), "Namespace", patches=True)
    assert patches["shop"]["metadata"]["labels"] == {"istio-injection": "enabled"}


def test_lockdown_and_the_stand_ins_fence_admit_the_egress_gateways_pods(dev):
    fence = objects(dev, "NetworkPolicy")["db/postgres-1-from-egress-gateway"]["spec"]["ingress"][0]["from"]
    assert fence == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
                      "podSelector": {"matchLabels": {"istio": "egressgateway"}}}]
    assert "rds-demo-1/egress-lockdown" in objects(dev, "NetworkPolicy")


def test_an_http_service_is_routed_by_request_and_its_tls_originated_and_verified_at_the_gateway(httpbin):
    route = objects(httpbin, "VirtualService")["istio-egress/httpbin-through-egress-gateway"]["spec"]
    assert route["http"][1] == {"match": [{"gateways": ["istio-egress/egress-httpbin"], "port": 443}],
                                "route": [{"destination": {"host": "httpbin.org", "port": {"number": 443}}}],
                                "headers": {"request": {"add": {"x-egress": "audited"}}}}
    assert objects(httpbin, "Gateway")["istio-egress/egress-httpbin"]["spec"]["servers"][0]["port"]["protocol"] == "HTTPS"
    origination = objects(httpbin, "DestinationRule")["istio-egress/httpbin-tls-origination"]["spec"]
    assert origination["exportTo"] == [".", "istio-system"]
    assert origination["trafficPolicy"]["portLevelSettings"] == [{"port": {"number": 443}, "tls": {
        "mode": "SIMPLE", "sni": "httpbin.org", "subjectAltNames": ["httpbin.org"]}}]


def test_limited_http_grants_are_rules_with_methods_and_paths_at_the_gateway(httpbin):
    rules = objects(httpbin, "AuthorizationPolicy")["istio-system/allow-httpbin-from-apps"]["spec"]["rules"]
    sni = [{"key": "connection.sni", "values": ["httpbin.org"]}]
    assert rules == [
        {"from": [{"source": {"principals": ["cluster.local/ns/apps/sa/admin"]}}], "when": sni},
        {"from": [{"source": {"namespaces": ["apps"]}}], "when": sni,
         "to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]},
    ]


def test_routes_are_made_only_after_the_gateway_is_closed(dev):
    baseline = "egress/egress-gateway/allow-nothing"
    entry = "egress/database/postgres-1/external-service"
    for resource in ("service-entry", "gateway-server", "gateway-subset"):
        assert baseline in dev.dependencies[f"{entry}/{resource}"], resource
    assert {f"{entry}/service-entry", f"{entry}/gateway-server", f"{entry}/gateway-subset"} <= dev.dependencies[f"{entry}/route"]


def test_the_egress_gateway_must_exist_before_anything_is_created():
    mocks = RecordingMocks(DEV_LOAD_BALANCERS, cluster=Cluster(missing={"Service/istio-system/istio-egressgateway"}))
    with pytest.raises(ReadRefused, match="istio-egressgateway"):
        run_program(dev_values(dataplane="sidecar"), mocks)
    assert mocks.refused == ["egress/prerequisites/egress-gateway: install an Istio egress gateway (the istio/gateway chart)"]
    assert not [resource for resource in mocks.registered if resource.is_kubernetes and not resource.read]


def test_sidecar_mode_reads_its_own_crds_and_no_ambient_prerequisite(dev):
    read = {resource.name.split(":")[0].rsplit("/", 1)[1] for resource in dev.reads()}
    assert {"gateways.networking.istio.io", "virtualservices.networking.istio.io", "sidecars.networking.istio.io"} <= read
    assert not {"ztunnel", "istio-waypoint", "gateways.gateway.networking.k8s.io"} & read


def test_the_gateway_namespace_selector_and_port_are_configurable():
    program = run(dev_values(dataplane="sidecar", sidecar={"egressGateway": {
        "namespace": "egress-gw", "service": "egress", "selector": {"app": "egress"}, "port": 8443}}))
    assert objects(program, "Gateway")["istio-egress/egress-postgres-1"]["spec"]["servers"][0]["port"]["number"] == 8443
    assert "egress-gw/allow-postgres-1-from-rds-demo-1" in objects(program, "AuthorizationPolicy")
    subset = objects(program, "DestinationRule")["egress-gw/postgres-1-via-egress-gateway"]["spec"]
    assert subset["host"] == "egress.egress-gw.svc.cluster.local"


@pytest.mark.parametrize(("values", "key", "words"), [
    ({"dataplane": "sidecars"}, "dataplane", 'must be one of ambient, sidecar (got \'sidecars\'); did you mean "sidecar"?'),
    ({"dataplane": "sidecar", "services": [{"name": "api", "host": "api.example.com",
                                            "ports": [{"number": 80, "protocol": "HTTP"}, {"number": 443, "protocol": "TLS"}]}]},
     "services[0].ports", "has 2 ports; in sidecar mode a target has one, which the egress gateway tells apart by SNI: "
                          "declare each port as its own service"),
    ({"dataplane": "sidecar", "istio": {"install": True, "version": "1.30.3"}}, "istio.install",
     "installs Istio for ambient; in sidecar mode install Istio with an egress gateway yourself"),
])
def test_what_sidecar_mode_cannot_render_is_refused_with_the_fix(values, key, words):
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [], **values})
    assert raised.value.problems == (f"{P}{key}: {words}",)
