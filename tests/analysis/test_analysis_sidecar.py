"""Sidecar mode: a client whose namespace runs sidecars reaches a ServiceEntry only if its sidecars see
the host (exportTo, Sidecar resources), route it to the egress gateway (a VirtualService on `mesh`
and a DestinationRule subset the sidecars look up) and the gateway's policies allow it by the
identity the hop's mutual TLS carries; otherwise the outbound traffic policy or the egress
NetworkPolicies decide. Upstream semantics are cited in analysis/sidecar.py and egress_gateway.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from analysis import Decision, HttpRequest, ObjectRef, Request, access_matrix, evaluate
from analysis.__main__ import main
from tests.support import SEED_000_TABLE

TARGET = "istio-egress/postgres-1"
LOCKDOWN_EGRESS = [{"to": [{"namespaceSelector": {}}]}]


def cell(manifests, client: str = "rds-demo-1", destination: str = TARGET, **options):
    return access_matrix(manifests, **options).verdict(client, destination)


def replaced(manifests, kind: str, name: str, change) -> list[dict]:
    """The manifests with the one of that kind and name changed by `change(manifest)` in place."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    change(found[0])
    return manifests


def test_the_seed_topology_reads_as_its_grants(k8s):
    cells = access_matrix(k8s.sidecar_seed()).to_dict()["cells"]
    assert cells == SEED_000_TABLE


def test_an_allowed_cell_says_where_the_gateway_allowed_it(k8s):
    reason = cell(k8s.sidecar_seed()).reason
    assert "allowed by istio-system/allow-postgres-1-from-rds-demo-1" in reason
    assert "at egress gateway istio-system/istio-egressgateway" in reason


# Which namespaces run sidecars


@pytest.mark.parametrize(
    ("labels", "sidecars"),
    [
        ({"istio-injection": "enabled"}, True),
        ({"istio.io/rev": "1-30"}, True),
        ({"istio-injection": "disabled", "istio.io/rev": "1-30"}, False),
        ({"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"}, True),
    ],
)
def test_injection_labels_decide_whether_a_namespace_runs_sidecars(k8s, labels, sidecars):
    manifests = [*k8s.sidecar_seed(), k8s.namespace("rds-demo-1", ambient=False, labels=labels)]
    verdict = cell(manifests)
    assert (verdict.decision is Decision.ALLOW) is sidecars, verdict.reason


def test_mid_migration_each_client_is_judged_by_its_own_dataplane(k8s):
    """One ServiceEntry served both ways: bound to the waypoint for ambient clients, routed to the
    egress gateway for sidecar ones. rds-demo-3 is labelled both ways: its pods get sidecars, which
    ztunnel leaves alone, so the waypoint's grant to it does not count and the gateway's missing one does."""
    manifests = [
        *k8s.sidecar_seed(),
        k8s.namespace("rds-demo-2"),  # ambient now
        k8s.injected("rds-demo-3", labels={"istio.io/dataplane-mode": "ambient"}),
        k8s.namespace("istio-egress"),
        k8s.waypoint(),
        k8s.allow_nothing("postgres-1"),
        k8s.grant("postgres-1", "rds-demo-2"),
        k8s.grant("postgres-1", "rds-demo-3"),
    ]
    def served_both_ways(entry):
        entry["metadata"]["labels"]["istio.io/use-waypoint"] = "waypoint"
        entry["spec"]["addresses"] = ["203.0.113.10"]

    replaced(manifests, "ServiceEntry", "postgres-1", served_both_ways)
    matrix = access_matrix(manifests, outbound_traffic_policy="REGISTRY_ONLY")
    assert matrix.decision("rds-demo-1", TARGET) is Decision.ALLOW  # sidecar, gateway grant
    assert "egress gateway" in matrix.reason("rds-demo-1", TARGET)
    assert matrix.decision("rds-demo-2", TARGET) is Decision.ALLOW  # ambient, waypoint grant
    assert "egress gateway" not in matrix.reason("rds-demo-2", TARGET)
    assert matrix.decision("rds-demo-3", TARGET) is Decision.DENY  # sidecars: not exported to it, REGISTRY_ONLY
    assert "is not exported to namespace rds-demo-3" in matrix.reason("rds-demo-3", TARGET)


# Visibility: exportTo and the Sidecar resource


def test_a_host_not_exported_to_the_namespace_is_refused_under_registry_only(k8s):
    manifests = replaced(k8s.sidecar_seed(), "ServiceEntry", "postgres-1", lambda m: m["spec"].update({"exportTo": ["."]}))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "is not exported to namespace rds-demo-1" in verdict.reason and "REGISTRY_ONLY" in verdict.reason


@pytest.mark.parametrize(
    ("export_to", "visible"),
    [(["*"], True), (["rds-demo-1", "istio-system"], True), (["~"], False), (["rds-demo-2", "istio-system"], False)],
)
def test_export_to_values(k8s, export_to, visible):
    manifests = replaced(k8s.sidecar_seed(), "ServiceEntry", "postgres-1", lambda m: m["spec"].update({"exportTo": export_to}))
    assert (cell(manifests).decision is Decision.ALLOW) is visible


def test_a_host_the_sidecar_resource_does_not_import_is_refused(k8s):
    manifests = [*k8s.sidecar_seed(), k8s.sidecar("rds-demo-1", "./*", "istio-system/*")]
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "does not import istio-egress/postgres-1.nip.io" in verdict.reason


def test_an_egress_listener_with_a_port_imports_its_hosts_on_that_port_only(k8s):
    def listeners(target_port: int) -> dict:
        narrowed = k8s.sidecar("rds-demo-1", "istio-egress/*", port=target_port)
        narrowed["spec"]["egress"].append({"hosts": [f"istio-system/{k8s.GATEWAY_HOST}"],
                                           "port": {"number": 443, "protocol": "TLS", "name": "tls"}})
        return narrowed

    assert cell([*k8s.sidecar_seed(), listeners(6432)]).decision is Decision.DENY
    assert cell([*k8s.sidecar_seed(), listeners(5432)]).decision is Decision.ALLOW


def test_the_root_namespace_sidecar_narrows_namespaces_without_their_own(k8s):
    manifests = [m for m in k8s.sidecar_seed() if not (m["kind"] == "Sidecar" and m["metadata"]["namespace"] == "rds-demo-1")]
    assert cell(manifests).decision is Decision.ALLOW  # no Sidecar: every exported host
    root = k8s.sidecar("istio-system", "./*", "istio-system/*", name="default")
    verdict = cell([*manifests, root])
    assert verdict.decision is Decision.DENY
    # `.` in the root namespace's Sidecar is the client's namespace, not istio-system.
    own = k8s.service_entry("local", namespace="rds-demo-1", waypoint=None)
    assert cell([*manifests, root, own], destination="rds-demo-1/local").decision is Decision.OPEN


def test_a_sidecar_with_a_workload_selector_lets_the_namespace_see_what_it_imports(k8s):
    narrow = k8s.sidecar("rds-demo-1", "./*", "istio-system/*")  # replaces the seed's
    wide = k8s.sidecar("rds-demo-1", "*/*", name="batch", selector={"app": "batch"})
    assert cell([*k8s.sidecar_seed(), narrow]).decision is Decision.DENY
    assert cell([*k8s.sidecar_seed(), narrow, wide]).decision is Decision.ALLOW


@pytest.mark.parametrize(("sidecar_mode", "mesh", "expected"), [
    (None, "REGISTRY_ONLY", Decision.DENY),
    (None, "ALLOW_ANY", Decision.OPEN),
    ("ALLOW_ANY", "REGISTRY_ONLY", Decision.OPEN),
    ("REGISTRY_ONLY", "ALLOW_ANY", Decision.DENY),
])
def test_a_hidden_host_goes_out_under_the_sidecars_outbound_policy_else_the_meshs(k8s, sidecar_mode, mesh, expected):
    manifests = [*k8s.sidecar_seed(), k8s.sidecar("rds-demo-1", "./*", mode=sidecar_mode)]
    verdict = cell(manifests, outbound_traffic_policy=mesh)
    assert verdict.decision is expected, verdict.reason


def test_a_hidden_host_passed_through_under_allow_any_is_stopped_by_the_lockdown(k8s):
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-1", egress=LOCKDOWN_EGRESS)
    manifests = [*k8s.sidecar_seed(), k8s.sidecar("rds-demo-1", "./*", mode="ALLOW_ANY"), lockdown]
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "egress NetworkPolicies of namespace rds-demo-1 stop" in verdict.reason


# Routing to the gateway


def test_a_visible_host_no_virtual_service_routes_goes_straight_out(k8s):
    manifests = replaced(k8s.sidecar_seed(), "VirtualService", "postgres-1-through-egress-gateway",
                         lambda m: m["spec"]["tcp"].pop(0))
    verdict = cell(manifests)
    assert verdict.decision is Decision.OPEN
    assert "it goes straight out to postgres-1.nip.io itself (no route of VirtualService" in verdict.reason
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-1", egress=LOCKDOWN_EGRESS)
    assert cell([*manifests, lockdown]).decision is Decision.DENY


def test_a_virtual_service_bound_only_to_the_gateway_does_not_route_sidecars(k8s):
    def gateway_only(route):
        route["spec"]["gateways"] = ["istio-egress/egress-postgres-1"]
        route["spec"]["tcp"][0]["match"][0].pop("gateways")

    manifests = replaced(k8s.sidecar_seed(), "VirtualService", "postgres-1-through-egress-gateway", gateway_only)
    assert cell(manifests).decision is Decision.OPEN


def test_a_match_on_mesh_in_a_virtual_service_not_bound_to_mesh_routes_no_sidecar(k8s):
    """istiod files a VirtualService for sidecars by its own `gateways` (push_context.go getGatewayNames)."""
    manifests = replaced(k8s.sidecar_seed(), "VirtualService", "postgres-1-through-egress-gateway",
                         lambda m: m["spec"].update({"gateways": ["istio-egress/egress-postgres-1"]}))
    assert cell(manifests).decision is Decision.OPEN


def test_a_tls_route_takes_only_the_server_names_its_sni_hosts_hold(k8s):
    def tls(sni_host: str) -> list[dict]:
        manifests = k8s.sidecar_seed()

        def by_sni(route):
            to_gateway = route["spec"]["tcp"].pop(0)
            to_gateway["match"][0]["sniHosts"] = [sni_host]
            route["spec"]["tls"] = [to_gateway]

        replaced(manifests, "VirtualService", "postgres-1-through-egress-gateway", by_sni)
        replaced(manifests, "ServiceEntry", "postgres-1", lambda m: m["spec"]["ports"][0].update({"protocol": "TLS"}))
        return manifests

    assert cell(tls("*.nip.io")).decision is Decision.ALLOW
    assert cell(tls("other.example.com")).decision is Decision.OPEN


def test_a_virtual_service_not_exported_to_the_namespace_does_not_route_it(k8s):
    manifests = replaced(k8s.sidecar_seed(), "VirtualService", "postgres-1-through-egress-gateway",
                         lambda m: m["spec"].update({"exportTo": ["."]}))
    assert cell(manifests).decision is Decision.OPEN


def test_an_http_route_that_sends_some_requests_straight_out_opens_the_cell(k8s):
    manifests = [
        *k8s.gateway_target("httpbin", host="httpbin.org", port=80, protocol="HTTP", export_to=None),
        k8s.injected("rds-demo-1"), k8s.gateway_policy("allow-nothing"),
    ]
    verdict = cell(manifests, destination="istio-egress/httpbin")
    assert verdict.decision is Decision.DENY  # every request through the gateway, which allows nothing

    def some_straight_out(route):
        route["spec"]["http"].insert(0, {"match": [{"gateways": ["mesh"], "port": 80, "uri": {"prefix": "/public"}}],
                                         "route": [{"destination": {"host": "httpbin.org"}}]})

    replaced(manifests, "VirtualService", "httpbin-through-egress-gateway", some_straight_out)
    verdict = cell(manifests, destination="istio-egress/httpbin")
    assert verdict.decision is Decision.OPEN
    assert "some of its connections go straight out to httpbin.org (VirtualService istio-egress/httpbin-through" in verdict.reason


# The hop to the gateway


def test_a_subset_in_a_destination_rule_the_sidecars_do_not_look_up_fails_the_route(k8s):
    """A sidecar looks for the gateway host's DestinationRule in its own namespace, the gateway's and
    the root namespace only (pilot/pkg/model/push_context.go destinationRule)."""
    manifests = replaced(k8s.sidecar_seed(), "DestinationRule", "postgres-1-via-egress-gateway",
                         lambda m: m["metadata"].update({"namespace": "istio-egress"}))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "defines subset postgres-1" in verdict.reason
    replaced(manifests, "DestinationRule", "postgres-1-via-egress-gateway",
             lambda m: m["metadata"].update({"namespace": "rds-demo-1"}))
    assert cell(manifests).decision is Decision.ALLOW


def test_rules_that_do_not_merge_leave_a_subset_to_the_order_they_were_created_in(k8s):
    manifests = replaced(k8s.sidecar_seed(), "DestinationRule", "postgres-1-via-egress-gateway",
                         lambda m: m["spec"].update({"exportTo": [".", "rds-demo-1"]}))
    other = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
             "metadata": {"name": "other", "namespace": "istio-system"},
             "spec": {"host": k8s.GATEWAY_HOST, "exportTo": ["rds-demo-1", "rds-demo-2"], "subsets": [{"name": "other"}]}}
    verdict = cell([*manifests, other])
    assert verdict.decision is Decision.UNDECIDED
    assert "creation order" in verdict.reason


@pytest.mark.parametrize(("hop", "why"), [
    ({"mode": "DISABLE"}, "sends plaintext"),
    ({"mode": "SIMPLE", "sni": "postgres-1.nip.io"}, "sends none (SIMPLE)"),
    ({"mode": "ISTIO_MUTUAL", "sni": "elsewhere.example.com"}, 'sends "elsewhere.example.com"'),
])
def test_a_hop_the_gateways_server_refuses_fails(k8s, hop, why):
    manifests = replaced(k8s.sidecar_seed(), "DestinationRule", "postgres-1-via-egress-gateway",
                         lambda m: m["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0].update({"tls": hop}))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert why in verdict.reason


def test_without_a_subset_sni_the_sidecar_sends_the_cluster_name_which_the_server_does_not_serve(k8s):
    manifests = replaced(k8s.sidecar_seed(), "DestinationRule", "postgres-1-via-egress-gateway",
                         lambda m: m["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0]["tls"].pop("sni"))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert f'"outbound_.443_.postgres-1_.{k8s.GATEWAY_HOST}"' in verdict.reason


def plaintext_hop(k8s, *policies, hop=None):
    """A plaintext gateway server, and the hop's TLS as given (None: not set, so auto mTLS)."""
    return [k8s.injected("rds-demo-1"), k8s.injected("rds-demo-2"),
            *k8s.gateway_target(hop=hop, server_tls=None, export_to=None), *policies]


ALLOW_RDS_DEMO_1 = {"namespaces": ["rds-demo-1"]}


def test_without_mutual_tls_an_allow_rule_on_namespaces_never_matches(k8s):
    allow = k8s.gateway_policy("allow-rds-demo-1", k8s.rule(ALLOW_RDS_DEMO_1))
    verdict = cell(plaintext_hop(k8s, allow, hop={"mode": "DISABLE"}))
    assert verdict.decision is Decision.DENY
    assert "no ALLOW policy matched" in verdict.reason
    assert cell([*k8s.sidecar_seed(), allow]).decision is Decision.ALLOW


def test_without_mutual_tls_a_deny_rule_on_namespaces_never_matches_and_lets_the_namespace_through(k8s):
    deny = k8s.gateway_policy("deny-rds-demo-1", k8s.rule({"namespaces": ["rds-demo-1"]}), action="DENY")
    assert cell(plaintext_hop(k8s, deny, hop={"mode": "DISABLE"})).decision is Decision.OPEN
    with_identity = [*k8s.sidecar_seed(), deny]
    replaced(with_identity, "AuthorizationPolicy", "allow-nothing", lambda m: m["spec"].update({"rules": [{}]}))
    assert cell(with_identity).decision is Decision.DENY


def test_a_hop_left_to_auto_mtls_leaves_identity_rules_undecided(k8s):
    verdict = cell(plaintext_hop(k8s, k8s.gateway_policy("allow-rds-demo-1", k8s.rule(ALLOW_RDS_DEMO_1))))
    assert verdict.decision is Decision.UNDECIDED
    assert "auto mTLS" in verdict.reason


# The gateway


def test_a_gateway_without_a_server_for_the_host_drops_it(k8s):
    manifests = replaced(k8s.sidecar_seed(), "Gateway", "egress-postgres-1",
                         lambda m: m["spec"]["servers"][0].update({"hosts": ["other.example.com"]}))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "no networking Gateway configures a server for postgres-1.nip.io" in verdict.reason


@pytest.mark.parametrize("unbind", [
    pytest.param(lambda route: route["spec"]["tcp"].pop(1), id="no route at the gateway"),
    pytest.param(lambda route: route["spec"].update({"gateways": ["mesh"]}), id="not filed under the gateway"),
])
def test_a_gateway_without_a_route_out_drops_it(k8s, unbind):
    manifests = replaced(k8s.sidecar_seed(), "VirtualService", "postgres-1-through-egress-gateway", unbind)
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "no VirtualService bound to Gateway istio-egress/egress-postgres-1 routes" in verdict.reason


def test_a_service_entry_not_exported_to_the_gateways_namespace_leaves_the_gateway_no_cluster_for_it(k8s):
    manifests = replaced(k8s.sidecar_seed(), "ServiceEntry", "postgres-1",
                         lambda m: m["spec"].update({"exportTo": [".", "rds-demo-1"]}))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "is not exported to the gateway's namespace istio-system" in verdict.reason


def test_sidecars_that_do_not_import_the_gateways_service_have_no_cluster_for_it(k8s):
    manifests = [*k8s.sidecar_seed(), k8s.sidecar("rds-demo-1", "./*", "istio-egress/*")]
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "do not import its Service" in verdict.reason


def test_a_lockdown_that_does_not_admit_the_gateways_pods_stops_the_hop(k8s):
    only_dns = [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]}]
    manifests = [*k8s.sidecar_seed(), k8s.network_policy("egress-lockdown", "rds-demo-1", egress=only_dns)]
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "do not let its pods reach the gateway's pods" in verdict.reason
    assert cell([*k8s.sidecar_seed(), k8s.network_policy("egress-lockdown", "rds-demo-1", egress=LOCKDOWN_EGRESS)]).decision \
        is Decision.ALLOW


@pytest.mark.parametrize(("namespace", "selector", "applies"), [
    ("istio-system", {"istio": "egressgateway"}, True),
    ("istio-system", None, True),  # the root namespace, every workload
    ("istio-system", {"istio": "ingressgateway"}, False),
    ("istio-egress", {"istio": "egressgateway"}, False),  # neither the gateway's namespace nor the root
])
def test_the_gateway_applies_selector_policies_of_its_namespace_and_the_root_namespace(k8s, namespace, selector, applies):
    manifests = [m for m in k8s.sidecar_seed() if m["metadata"]["name"] != "allow-nothing"]
    deny = k8s.gateway_policy("deny-all", k8s.rule({"namespaces": ["*"]}), action="DENY",
                              namespace_name=namespace, selector=selector)
    assert (cell([*manifests, deny]).decision is Decision.DENY) is applies


def test_a_policy_with_target_refs_does_not_apply_at_the_egress_gateway(k8s):
    deny = k8s.policy("deny-all", "postgres-1", action="DENY", rules=[{}])
    deny["metadata"]["namespace"] = "istio-system"
    assert cell([*k8s.sidecar_seed(), deny]).decision is Decision.ALLOW


def test_the_gateway_tells_targets_apart_by_the_hops_sni(k8s):
    manifests = [m for m in k8s.sidecar_seed() if m["metadata"]["name"] != "allow-postgres-1-from-rds-demo-1"]
    manifests.append(k8s.gateway_grant("postgres-1", "rds-demo-1", host="postgres-2.nip.io"))
    verdict = cell(manifests)
    assert verdict.decision is Decision.DENY
    assert "no ALLOW policy matched" in verdict.reason


def test_principals_at_the_gateway_give_the_account_its_own_row(k8s):
    manifests = [m for m in k8s.sidecar_seed() if m["metadata"]["name"] != "allow-postgres-1-from-rds-demo-1"]
    manifests.append(k8s.gateway_grant("postgres-1", "rds-demo-1", principals=("cluster.local/ns/rds-demo-1/sa/app",)))
    matrix = access_matrix(manifests)
    assert matrix.decision("rds-demo-1/sa/app", TARGET) is Decision.ALLOW
    assert matrix.decision("rds-demo-1", TARGET) is Decision.DENY


def http_target(k8s, *grant_rules):
    grant = k8s.gateway_policy("allow-httpbin-from-rds-demo-1", *grant_rules)
    return [k8s.injected("rds-demo-1"), k8s.gateway_policy("allow-nothing"), grant,
            *k8s.gateway_target("httpbin", host="httpbin.org", port=80, protocol="HTTP", export_to=None)]


def test_methods_and_paths_at_the_gateway_limit_an_http_cell_and_a_request_settles_it(k8s):
    sni = [{"key": "connection.sni", "values": ["httpbin.org"]}]
    manifests = http_target(k8s, k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"], "paths": ["/get"]}, sni))
    assert cell(manifests, destination="istio-egress/httpbin").decision is Decision.LIMITED
    assert cell(manifests, destination="istio-egress/httpbin", request=HttpRequest("GET", "/get")).decision is Decision.ALLOW
    assert cell(manifests, destination="istio-egress/httpbin", request=HttpRequest("POST", "/get")).decision is Decision.DENY
    request = Request("rds-demo-1", ObjectRef("istio-egress", "httpbin"), 80, method="POST", path="/post")
    assert evaluate(manifests, request).decision is Decision.DENY
    assert evaluate(manifests, Request("rds-demo-1", ObjectRef("istio-egress", "httpbin"), 80, method="GET",
                                       path="/get")).decision is Decision.ALLOW


def test_a_request_asked_of_every_cell_carries_its_headers_whatever_their_case(k8s):
    team = [{"key": "request.headers[x-team]", "values": ["payments"]}]
    manifests = http_target(k8s, k8s.rule({"namespaces": ["rds-demo-1"]}, when=team))
    asked = HttpRequest("GET", "/", headers={"X-Team": "payments"})
    assert cell(manifests, destination="istio-egress/httpbin", request=asked).decision is Decision.ALLOW
    request = Request("rds-demo-1", ObjectRef("istio-egress", "httpbin"), 80, method="GET", path="/",
                      headers={"X-Team": "payments"})
    assert evaluate(manifests, request).decision is Decision.ALLOW


def test_http_rules_on_a_gateway_server_that_does_not_parse_http_never_match(k8s):
    manifests = [*k8s.sidecar_seed()]
    manifests = [m for m in manifests if m["metadata"]["name"] != "allow-postgres-1-from-rds-demo-1"]
    manifests.append(k8s.gateway_policy("allow-get", k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"]})))
    assert cell(manifests).decision is Decision.DENY  # a TLS server: TCP at the gateway


# Pods that leave their sidecar


def unlocked_seed(k8s):
    """The seed with postgres-1 named by an IP it pins, and no NetworkPolicy: a pod without a sidecar reaches it."""
    manifests = k8s.sidecar_seed()
    replaced(manifests, "ServiceEntry", "postgres-1", lambda m: m["spec"].update({"hosts": ["203.0.113.10.nip.io"],
                                                                                 "addresses": ["203.0.113.10"]}))
    return manifests


@pytest.mark.parametrize(("labels", "annotations", "leaves"), [
    ({"sidecar.istio.io/inject": "false"}, None, True),
    (None, {"sidecar.istio.io/inject": "false"}, True),
    ({"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"}, False),  # the label wins
    (None, {"traffic.sidecar.istio.io/excludeOutboundPorts": "5432"}, True),
    (None, {"traffic.sidecar.istio.io/excludeOutboundPorts": "3306"}, False),
    (None, {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "203.0.113.0/24"}, True),
    (None, {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8"}, False),
    (None, {"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8"}, True),
    (None, {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "not-a-cidr"}, False),  # refused by the injector
])
def test_a_workload_that_leaves_its_sidecar_for_the_destination_bypasses_the_gateway(k8s, labels, annotations, leaves):
    manifests = [*unlocked_seed(k8s), k8s.workload("batch", "rds-demo-2", labels=labels, annotations=annotations)]
    verdict = cell(manifests, client="rds-demo-2")
    assert (verdict.decision is Decision.BYPASS) is leaves, verdict.reason
    if leaves:
        assert verdict.bypasses[0].startswith("direct from Deployment rds-demo-2/batch")
        assert "reachable around the egress gateway" in verdict.reason


def test_a_host_network_pod_leaves_its_sidecar_and_no_network_policy_holds_it(k8s):
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-2", egress=LOCKDOWN_EGRESS)
    manifests = [*unlocked_seed(k8s), lockdown, k8s.workload("node-agent", "rds-demo-2", host_network=True)]
    assert cell(manifests, client="rds-demo-2").decision is Decision.BYPASS


def test_the_lockdown_holds_a_pod_without_a_sidecar(k8s):
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-2", egress=LOCKDOWN_EGRESS)
    opted_out = k8s.workload("batch", "rds-demo-2", labels={"sidecar.istio.io/inject": "false"})
    assert cell([*unlocked_seed(k8s), lockdown, opted_out], client="rds-demo-2").decision is Decision.DENY


def test_a_pod_without_a_sidecar_in_a_namespace_also_ambient_is_ztunnels(k8s):
    manifests = [*unlocked_seed(k8s), k8s.injected("rds-demo-2", labels={"istio.io/dataplane-mode": "ambient"}),
                 k8s.workload("batch", "rds-demo-2", labels={"sidecar.istio.io/inject": "false"})]
    assert cell(manifests, client="rds-demo-2").decision is Decision.DENY


def test_a_leaving_workload_is_on_the_row_of_its_service_account(k8s):
    manifests = [*unlocked_seed(k8s), k8s.workload("batch", "rds-demo-2", service_account="batch",
                                                   labels={"sidecar.istio.io/inject": "false"}),
                 k8s.gateway_grant("postgres-2", "rds-demo-2", principals=("cluster.local/ns/rds-demo-2/sa/batch",))]
    matrix = access_matrix(manifests)
    assert matrix.decision("rds-demo-2/sa/batch", TARGET) is Decision.BYPASS
    assert matrix.decision("rds-demo-2", TARGET) is Decision.DENY


def test_a_backend_service_the_sidecars_see_is_a_route_around_the_gateway_unless_its_ingress_is_fenced(k8s):
    manifests = [*k8s.sidecar_seed(), k8s.database("postgres-1", kind="Service")]
    verdict = cell(manifests, client="rds-demo-2")
    assert verdict.decision is Decision.BYPASS
    assert verdict.bypasses == ("in-cluster db/postgres-1",)
    gateway_namespace = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}
    fence = k8s.network_policy("fence", "db", pod_selector={"matchLabels": k8s.stand_in_pods("postgres-1")},
                               ingress=[{"from": [gateway_namespace]}])
    assert cell([*manifests, fence], client="rds-demo-2").decision is Decision.DENY
    hidden = [*manifests, k8s.sidecar("rds-demo-2", "./*", f"istio-system/{k8s.GATEWAY_HOST}")]
    assert cell(hidden, client="rds-demo-2").decision is Decision.DENY  # its Service is not imported


# Any other external destination


def test_sidecars_refuse_other_destinations_under_registry_only_unless_a_workload_leaves_them(k8s):
    matrix = access_matrix(k8s.sidecar_seed())
    assert matrix.other_destinations["rds-demo-1"].decision is Decision.DENY
    assert "REGISTRY_ONLY" in matrix.other_destinations["rds-demo-1"].reason
    allow_any = [*k8s.sidecar_seed(), k8s.sidecar("rds-demo-1", "./*", mode="ALLOW_ANY")]
    assert access_matrix(allow_any).other_destinations["rds-demo-1"].decision is Decision.OPEN
    leaving = [*k8s.sidecar_seed(), k8s.workload("batch", labels={"sidecar.istio.io/inject": "false"})]
    assert access_matrix(leaving).other_destinations["rds-demo-1"].decision is Decision.OPEN


# The command line


def test_cli_takes_the_meshs_outbound_traffic_policy(k8s, tmp_path, capsys):
    manifests = [m for m in k8s.sidecar_seed() if m["kind"] != "Sidecar"]
    replaced(manifests, "ServiceEntry", "postgres-1", lambda m: m["spec"].update({"exportTo": ["."]}))
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(manifests))
    main([str(tmp_path), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["outbound_traffic_policy"] == "ALLOW_ANY"
    assert document["matrix"]["cells"]["rds-demo-1"][TARGET] == "OPEN"
    main([str(tmp_path), "--format", "json", "--outbound-traffic-policy", "REGISTRY_ONLY"])
    document = json.loads(capsys.readouterr().out)
    assert document["matrix"]["cells"]["rds-demo-1"][TARGET] == "DENY"
