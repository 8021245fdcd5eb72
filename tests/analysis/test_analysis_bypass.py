"""Routes around the waypoint, and the evidence that links in-cluster pods to a ServiceEntry.

Upstream: ztunnel src/proxy/outbound.rs (an address no service claims is passed straight through, so
dialling a database's raw IP skips the waypoint unless `spec.addresses` lists it); istio.io
ambient/usage/networkpolicy (ambient never bypasses NetworkPolicy: the CNI sees client pod to
destination for passthrough traffic, and waypoint pod to destination for what the waypoint forwards).
How pods are linked to a ServiceEntry is the analysis's own rule, documented in analysis/backends.py.
"""

from __future__ import annotations

import ipaddress

import pytest

from analysis import Code, Decision, access_matrix, analyze
from analysis.bypass import host_ip
from analysis.netpol import Labels, selector_matches

CLIENTS = ("rds-demo-1", "rds-demo-2")
POSTGRES_1 = "istio-egress/postgres-1"


def routes(manifests, client: str = "rds-demo-1", destination: str = POSTGRES_1) -> tuple[str, ...]:
    return access_matrix(manifests).verdict(client, destination).bypasses


def clients_with(manifests, route: str, destination: str = POSTGRES_1) -> set[str]:
    matrix = access_matrix(manifests)
    return {client for client in matrix.clients if route in matrix.verdict(client, destination).bypasses}


def external(k8s, *extra, addresses: tuple[str, ...] = ()):
    """An ambient client and an IP-addressed database outside the cluster: no stand-in behind it."""
    return [
        k8s.namespace("rds-demo-1"),
        k8s.namespace(k8s.EGRESS),
        k8s.waypoint(),
        k8s.service_entry("postgres-1", host="10.0.0.9.nip.io", addresses=addresses),
        k8s.allow_nothing("postgres-1"),
        *extra,
    ]


def without_ingress_policies(k8s, *extra):
    """The seed with its IPs pinned but its stand-ins open to every namespace."""
    return [*(m for m in k8s.seed() if m["kind"] != "NetworkPolicy"), *extra]


def stand_in_ingress(k8s, name: str, *peers, pod_selector=None):
    """An ingress policy on postgres-1's pods admitting `peers` (no peers: everyone)."""
    rule = {"from": list(peers)} if peers else {}
    selector = pod_selector or {"matchLabels": k8s.stand_in_pods("postgres-1")}
    return k8s.network_policy(name, "db", pod_selector=selector, policy_types=["Ingress"], ingress=[rule])


# The IPs a host spells out


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("10.0.0.1.nip.io", "10.0.0.1"),
        ("10.0.0.1.sslip.io", "10.0.0.1"),
        ("db.10.0.0.1.nip.io", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("postgres-1.nip.io", None),
        ("10.0.0.1.example.com", None),
        ("db.example.com", None),
    ],
)
def test_host_ip_reads_ipv4_literals_and_ip_echo_domains(host, ip):
    assert host_ip(host) == (ipaddress.IPv4Address(ip) if ip else None)


# Raw IP


def test_raw_ip_route_is_open_when_the_service_entry_does_not_pin_its_ip(k8s):
    assert routes(external(k8s)) == ("raw IP 10.0.0.9",)


@pytest.mark.parametrize("addresses", [("10.0.0.9",), ("10.0.0.0/24",)])
def test_raw_ip_route_is_closed_by_spec_addresses(k8s, addresses):
    assert routes(external(k8s, addresses=addresses)) == ()


def test_raw_ip_route_is_closed_by_a_client_egress_policy_excepting_the_ip(k8s):
    assert routes(external(k8s, k8s.deny_database_egress("rds-demo-1", "10.0.0.9"))) == ()


def test_egress_policy_excepting_other_ips_leaves_the_route_open(k8s):
    assert routes(external(k8s, k8s.deny_database_egress("rds-demo-1", "10.0.0.8"))) == ("raw IP 10.0.0.9",)


def test_default_deny_egress_closes_the_route(k8s):
    deny_all = k8s.network_policy("deny-all", "rds-demo-1", policy_types=["Egress"])
    assert routes(external(k8s, deny_all)) == ()


def test_egress_section_without_policy_types_isolates_egress(k8s):
    deny_all = k8s.network_policy("deny-all", "rds-demo-1", egress=[])
    assert routes(external(k8s, deny_all)) == ()


def test_egress_policy_that_isolates_only_some_pods_leaves_the_others_open(k8s):
    deny_web = k8s.network_policy(
        "deny-web", "rds-demo-1", pod_selector={"matchLabels": {"app": "web"}}, policy_types=["Egress"]
    )
    assert routes(external(k8s, deny_web)) == ("raw IP 10.0.0.9",)


def test_any_pod_a_broader_egress_policy_may_select_keeps_the_route_open(k8s):
    migrator = k8s.network_policy(
        "migrator-anywhere",
        "rds-demo-1",
        pod_selector={"matchLabels": {"app": "migrator"}},
        egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
    )
    manifests = external(k8s, k8s.deny_database_egress("rds-demo-1", "10.0.0.9"), migrator)
    assert routes(manifests) == ("raw IP 10.0.0.9",)


def test_egress_rule_without_peers_allows_every_ip(k8s):
    anywhere = k8s.network_policy("anywhere", "rds-demo-1", policy_types=["Egress"], egress=[{}])
    assert routes(external(k8s, anywhere)) == ("raw IP 10.0.0.9",)


def test_raw_ip_route_to_a_stand_in_is_closed_by_its_ingress_policy(k8s):
    manifests = [*k8s.seed(protected=False), k8s.waypoint_only_ingress("postgres-1")]
    assert routes(manifests, "rds-demo-2") == ()
    assert routes(manifests, "rds-demo-2", "istio-egress/postgres-2") == ("raw IP 10.0.0.2", "in-cluster db/postgres-2")


# In-cluster


def test_in_cluster_route_is_open_without_an_ingress_policy(k8s):
    assert clients_with(without_ingress_policies(k8s), "in-cluster db/postgres-1") == set(CLIENTS)


def test_in_cluster_route_is_closed_by_the_waypoint_only_ingress_policy(k8s):
    assert clients_with(k8s.seed(), "in-cluster db/postgres-1") == set()


def test_ingress_policy_admitting_a_client_namespace_leaves_its_route_open(k8s):
    demo_2 = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "rds-demo-2"}}}
    manifests = [*k8s.seed(), stand_in_ingress(k8s, "from-demo-2", demo_2)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == {"rds-demo-2"}


@pytest.mark.parametrize(
    ("operator", "values", "admitted"),
    [
        ("In", ["payments"], {"rds-demo-2"}),
        ("NotIn", ["payments"], {"rds-demo-1"}),
        ("Exists", [], {"rds-demo-2"}),
        ("DoesNotExist", [], {"rds-demo-1"}),
    ],
)
def test_namespace_selector_expressions_are_judged_on_namespace_labels(k8s, operator, values, admitted):
    expression = {"key": "team", "operator": operator, "values": values}
    by_team = {"namespaceSelector": {"matchExpressions": [expression]}}
    payments = k8s.namespace("rds-demo-2", labels={"team": "payments"})
    manifests = [*k8s.seed(), payments, stand_in_ingress(k8s, "by-team", by_team)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == admitted


def test_peer_requiring_the_gateway_label_admits_only_waypoint_pods(k8s):
    gateway_pods = {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "x"}}
    any_gateway = {"namespaceSelector": {}, "podSelector": gateway_pods}
    manifests = [*without_ingress_policies(k8s), stand_in_ingress(k8s, "gateways", any_gateway)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set()


def test_peer_with_other_pod_labels_may_admit_client_pods(k8s):
    labelled = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "reporting"}}}
    manifests = [*k8s.seed(), stand_in_ingress(k8s, "reporting", labelled)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set(CLIENTS)


def test_peer_without_namespace_selector_admits_only_the_policys_own_namespace(k8s):
    same_namespace = {"podSelector": {}}
    manifests = [*without_ingress_policies(k8s), stand_in_ingress(k8s, "same-namespace", same_namespace)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set()


def test_ip_block_peer_may_admit_client_pods(k8s):
    # Pod IPs are not in the manifests, so any ipBlock might cover them.
    office = {"ipBlock": {"cidr": "192.168.50.0/24"}}
    manifests = [*k8s.seed(), stand_in_ingress(k8s, "office", office)]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set(CLIENTS)


def test_ingress_rule_without_peers_admits_everyone(k8s):
    manifests = [*k8s.seed(), stand_in_ingress(k8s, "everyone")]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set(CLIENTS)


def test_policy_selecting_every_pod_of_the_namespace_closes_the_route(k8s):
    waypoint_only = k8s.waypoint_only_ingress("postgres-1")
    waypoint_only["spec"]["podSelector"] = {}
    assert clients_with([*without_ingress_policies(k8s), waypoint_only], "in-cluster db/postgres-1") == set()


def test_policy_selecting_another_database_does_not_close_the_route(k8s):
    manifests = [*without_ingress_policies(k8s), k8s.waypoint_only_ingress("postgres-2")]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set(CLIENTS)
    assert clients_with(manifests, "in-cluster db/postgres-2", "istio-egress/postgres-2") == set()


def test_policy_selecting_by_labels_the_service_does_not_show_is_not_trusted_to_isolate(k8s):
    # The pods may well carry the component label, but the Service's selector does not say so.
    by_component = {"matchLabels": {"app.kubernetes.io/component": "database"}}
    waypoint_only = k8s.waypoint_only_ingress("postgres-1")
    waypoint_only["spec"]["podSelector"] = by_component
    assert clients_with([*without_ingress_policies(k8s), waypoint_only], "in-cluster db/postgres-1") == set(CLIENTS)


def test_client_egress_policy_can_close_the_in_cluster_route(k8s):
    deny_all = k8s.network_policy("deny-all", "rds-demo-1", policy_types=["Egress"])
    assert clients_with(without_ingress_policies(k8s, deny_all), "in-cluster db/postgres-1") == {"rds-demo-2"}


def test_stand_in_inside_the_mesh_is_not_treated_as_one(k8s):
    manifests = [*without_ingress_policies(k8s), k8s.namespace("db")]
    assert clients_with(manifests, "in-cluster db/postgres-1") == set()


# Where there is no waypoint to bypass


def test_client_outside_the_mesh_has_no_route_around_the_waypoint(k8s):
    verdict = access_matrix(k8s.seed(protected=False), clients=["db"]).verdict("db", POSTGRES_1)
    assert (verdict.decision, verdict.bypasses) == (Decision.OPEN, ())


def test_service_entry_no_waypoint_enforces_has_no_route_around_it(k8s):
    unbound = k8s.service_entry("postgres-1", host="10.0.0.9.nip.io", waypoint=None)
    manifests = [*external(k8s)[:3], unbound, k8s.allow_nothing("postgres-1")]
    assert routes(manifests) == ()


# BYPASS cells


def test_denied_cell_with_an_open_route_is_bypass(k8s):
    verdict = access_matrix(external(k8s)).verdict("rds-demo-1", POSTGRES_1)
    assert verdict.decision is Decision.BYPASS
    assert verdict.reason.endswith("reachable around the waypoint via raw IP 10.0.0.9")


# Findings


def codes(manifests) -> list[tuple[str, str]]:
    return [(finding.code, finding.resource) for finding in analyze(manifests)]


def test_unprotected_seed_reports_each_route_once_per_resource(k8s):
    assert codes(k8s.seed(protected=False)) == [
        ("EGW0401", "ServiceEntry istio-egress/postgres-1"),
        ("EGW0401", "ServiceEntry istio-egress/postgres-2"),
        ("EGW0402", "Service db/postgres-1"),
        ("EGW0402", "Service db/postgres-2"),
    ]


def test_raw_ip_finding_names_the_ip_the_clients_and_the_fix(k8s):
    finding = analyze(k8s.seed(protected=False))[0]
    assert str(finding) == (
        "Error [EGW0401] (ServiceEntry istio-egress/postgres-1) Raw-IP connections to 10.0.0.1 bypass the "
        'waypoint (from rds-demo-1, rds-demo-2): add spec.addresses: ["10.0.0.1"] or an egress NetworkPolicy '
        "in each client namespace"
    )


def test_in_cluster_finding_lists_only_the_admitted_namespaces(k8s):
    demo_2 = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "rds-demo-2"}}}
    [finding] = analyze([*k8s.seed(), stand_in_ingress(k8s, "from-demo-2", demo_2)])
    assert (finding.code, finding.severity, finding.resource) == ("EGW0402", "Error", "Service db/postgres-1")
    assert "(rds-demo-2):" in finding.message


def test_dns_named_service_entry_is_a_warning(k8s):
    orders = k8s.service_entry("orders", host="orders.example.com")
    manifests = [*k8s.seed(), orders, k8s.allow_nothing("orders")]
    [finding] = analyze(manifests)
    assert (finding.code, finding.severity, finding.resource) == (
        Code.DNS_HOST_UNPINNED,
        "Warning",
        "ServiceEntry istio-egress/orders",
    )
    assert '"orders.example.com"' in finding.message
    assert "pods of rds-demo-1, rds-demo-2 may connect to them directly" in finding.message
    assert access_matrix(manifests).verdict("rds-demo-1", "istio-egress/orders").bypasses == ()


def test_dns_named_service_entry_is_reported_for_the_namespaces_whose_egress_reaches_it(k8s):
    orders = k8s.service_entry("orders", host="orders.example.com")
    in_cluster_only = k8s.network_policy(
        "egress-lockdown", "rds-demo-1", policy_types=["Egress"], egress=[{"to": [{"namespaceSelector": {}}]}]
    )
    [finding] = analyze([*k8s.seed(), orders, k8s.allow_nothing("orders"), in_cluster_only])
    assert "pods of rds-demo-2 may connect to them directly" in finding.message


def test_dns_named_service_entry_is_no_warning_once_every_client_is_locked_down(k8s):
    orders = k8s.service_entry("orders", host="orders.example.com")
    locked = [
        k8s.network_policy("egress-lockdown", ns, policy_types=["Egress"], egress=[{"to": [{"namespaceSelector": {}}]}])
        for ns in ("rds-demo-1", "rds-demo-2")
    ]
    assert analyze([*k8s.seed(), orders, k8s.allow_nothing("orders"), *locked[:1]]) != []
    assert analyze([*k8s.seed(), orders, k8s.allow_nothing("orders"), *locked]) == []


def test_dns_named_service_entry_with_pinned_addresses_is_fine(k8s):
    orders = k8s.service_entry("orders", host="orders.example.com", addresses=("10.1.0.0/24",))
    assert analyze([*k8s.seed(), orders, k8s.allow_nothing("orders")]) == []


def test_dns_named_stand_in_is_judged_by_its_ingress_policy_instead(k8s):
    # A LoadBalancer that reports a hostname: connections to it land on the stand-in's pods.
    manifests = [m for m in k8s.seed() if m["kind"] != "ServiceEntry"]
    manifests += [
        k8s.service_entry("postgres-1", host="pg1.elb.example.com"),
        k8s.service_entry("postgres-2", host="10.0.0.2.nip.io", addresses=("10.0.0.2",)),
    ]
    assert analyze(manifests) == []


def test_unbound_dns_named_service_entry_reports_only_that_it_is_unbound(k8s):
    orders = k8s.service_entry("orders", host="orders.example.com", waypoint=None)
    assert codes([*k8s.seed(), orders, k8s.allow_nothing("orders")]) == [
        ("EGW0201", "ServiceEntry istio-egress/orders")
    ]


# Label selectors, where the manifests show only some of a pod's labels


@pytest.mark.parametrize(
    ("selector", "verdict"),
    [
        ({}, True),
        ({"matchLabels": {"app": "db"}}, True),
        ({"matchLabels": {"app": "web"}}, False),
        ({"matchLabels": {"tier": "data"}}, None),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, None),
        ({"matchExpressions": [{"key": "gateway", "operator": "DoesNotExist"}]}, True),
        ({"matchLabels": {"app": "web", "tier": "data"}}, False),
    ],
)
def test_selector_on_partly_known_labels_may_be_undecided(selector, verdict):
    labels = Labels({"app": "db"}, lacking=frozenset({"gateway"}))
    assert selector_matches(selector, labels) is verdict


def test_selector_on_complete_labels_is_decided():
    labels = Labels({"app": "db"}, complete=True)
    assert selector_matches({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels) is True
    assert selector_matches({"matchLabels": {"tier": "data"}}, labels) is False


# What links in-cluster pods to a ServiceEntry: evidence in the manifests, not a naming convention


def live_service(name: str, namespace: str = "db", **shown):
    """A Service as `kubectl get -o yaml` shows it, with whatever addresses `shown` gives."""
    spec = {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 5432}]}
    status = {}
    if "ingress" in shown:
        status = {"loadBalancer": {"ingress": [shown.pop("ingress")]}}
    spec.update(shown)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": spec, "status": status}


def fenced(k8s, name: str, namespace: str = "db"):
    """An ingress policy on the Service's pods admitting only the egress waypoint."""
    policy = k8s.waypoint_only_ingress(name, namespace)
    policy["spec"]["podSelector"] = {"matchLabels": {"app": name}}
    return policy


@pytest.mark.parametrize(
    "shown",
    [
        {"ingress": {"ip": "10.0.0.9"}},
        {"loadBalancerIP": "10.0.0.9"},
        {"externalIPs": ["10.0.0.9"]},
    ],
)
def test_service_whose_shown_address_is_the_service_entrys_is_its_backend_whatever_its_name(k8s, shown):
    manifests = external(k8s, k8s.namespace("db", ambient=False), live_service("primary", **shown))
    assert routes(manifests) == ("raw IP 10.0.0.9", "in-cluster db/primary")
    # Fenced, the raw IP lands on the fenced pods, so both routes close.
    assert routes([*manifests, fenced(k8s, "primary")]) == ()


def test_load_balancer_hostname_that_is_the_service_entrys_host_links_the_service(k8s):
    elb = k8s.service_entry("postgres-1", host="pg.elb.example.com")
    manifests = [*external(k8s)[:3], elb, k8s.allow_nothing("postgres-1"), k8s.namespace("db", ambient=False),
                 live_service("primary", ingress={"hostname": "pg.elb.example.com"})]
    assert routes(manifests) == ("in-cluster db/primary",)
    assert analyze([*manifests, fenced(k8s, "primary")]) == []  # no EGW0403: the pods' fence judges the host


@pytest.mark.parametrize("host", ["primary.db.svc", "primary.db.svc.cluster.local"])
def test_service_entry_naming_a_services_in_cluster_name_links_it(k8s, host):
    pointing = k8s.service_entry("postgres-1", host=host)
    manifests = [*external(k8s)[:3], pointing, k8s.allow_nothing("postgres-1"), k8s.namespace("db", ambient=False),
                 live_service("primary")]
    assert routes(manifests) == ("in-cluster db/primary",)


def test_endpoint_address_naming_a_service_links_it(k8s):
    with_endpoint = k8s.service_entry("postgres-1", host="db.example.com")
    with_endpoint["spec"]["endpoints"] = [{"address": "primary.db.svc.cluster.local"}]
    manifests = [*external(k8s)[:3], with_endpoint, k8s.allow_nothing("postgres-1"),
                 k8s.namespace("db", ambient=False), live_service("primary")]
    assert routes(manifests) == ("in-cluster db/primary",)


def test_load_balancer_of_another_name_whose_address_is_not_shown_is_not_linked(k8s):
    # Nothing says which ServiceEntry it stands behind, so the raw IP counts as external.
    manifests = external(k8s, k8s.namespace("db", ambient=False), live_service("primary"), fenced(k8s, "primary"))
    assert routes(manifests) == ("raw IP 10.0.0.9",)


def test_load_balancer_of_the_service_entrys_name_on_another_port_is_not_linked(k8s):
    other_port = live_service("postgres-1")
    other_port["spec"]["ports"] = [{"port": 6432}]
    manifests = external(k8s, k8s.namespace("db", ambient=False), other_port, fenced(k8s, "postgres-1"))
    assert routes(manifests) == ("raw IP 10.0.0.9",)


def test_pods_a_workload_selector_picks_outside_the_mesh_are_reported_on_the_service_entry(k8s):
    legacy = k8s.service_entry("legacy", namespace="legacy", host="legacy.example.com")
    legacy["spec"]["workloadSelector"] = {"labels": {"app": "legacy-db"}}
    waypoint = k8s.waypoint(allowed_namespaces={"from": "All"})
    legacy["metadata"]["labels"]["istio.io/use-waypoint-namespace"] = "istio-egress"
    allow_nothing = k8s.policy("legacy-allow-nothing", "legacy", namespace="legacy")
    manifests = [*(m for m in k8s.seed() if m["kind"] != "Gateway"), waypoint, k8s.namespace("legacy", ambient=False),
                 legacy, allow_nothing]
    matrix = access_matrix(manifests)
    assert matrix.verdict("rds-demo-1", "legacy/legacy").bypasses == ("in-cluster legacy/legacy",)
    [finding] = [f for f in analyze(manifests) if f.code is Code.SELECTED_PODS_ADMIT_CLIENTS]
    assert finding.resource == "ServiceEntry legacy/legacy"
