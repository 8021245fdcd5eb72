"""Workloads of an ambient namespace that leave ztunnel's capture, and dial a ServiceEntry's destination
themselves: only their namespace's egress NetworkPolicy stands in the way.

Upstream: `istio.io/dataplane-mode: none` on a pod (label/labels.yaml); `sidecar.istio.io/inject:
"true"` selects a pod for injection (object.sidecar-injector.istio.io in
manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml), and ztunnel leaves
sidecar pods alone; host-network pods are neither captured nor governed by NetworkPolicy (istio.io
ambient/usage/networkpolicy); `ambient.istio.io/dns-capture: "false"` (release note 54935.yaml,
Istio 1.25) leaves a captured pod resolving names past ztunnel's DNS, so a DNS name leads it to
addresses no ServiceEntry claims, which ztunnel passes through (src/proxy/outbound.rs).
"""

from __future__ import annotations

import pytest

from analysis import Code, Decision, access_matrix, analyze

PINNED = "istio-egress/postgres-1"  # 10.0.0.9, pinned in spec.addresses
DNS_NAMED = "istio-egress/orders"  # orders.example.com, an address Istio allocates
NONE = {"istio.io/dataplane-mode": "none"}
IN_CLUSTER = {"to": [{"namespaceSelector": {}}]}


def mesh(k8s, *extra):
    """An ambient client without egress lockdown, an IP-pinned and a DNS-named database, both closed."""
    return [
        k8s.namespace("rds-demo-1"),
        k8s.namespace(k8s.EGRESS),
        k8s.waypoint(),
        k8s.service_entry("postgres-1", host="10.0.0.9.nip.io", addresses=("10.0.0.9",)),
        k8s.service_entry("orders", host="orders.example.com"),
        k8s.allow_nothing("postgres-1"),
        k8s.allow_nothing("orders"),
        *extra,
    ]


def lockdown(k8s, *cidrs: str):
    egress = [IN_CLUSTER, *([{"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]}] if cidrs else [])]
    return k8s.network_policy("egress-lockdown", "rds-demo-1", policy_types=["Egress"], egress=egress)


def routes(manifests, client: str = "rds-demo-1", **options) -> dict[str, tuple[str, ...]]:
    matrix = access_matrix(manifests, **options)
    return {destination: matrix.verdict(client, destination).bypasses for destination in (PINNED, DNS_NAMED)}


def opt_out_findings(manifests, **options) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in analyze(manifests, **options) if f.code is Code.WORKLOAD_OPTS_OUT]


def test_a_pod_outside_capture_without_lockdown_reaches_every_database_directly(k8s):
    manifests = mesh(k8s, k8s.workload("legacy", labels=NONE))
    route = "direct from Deployment rds-demo-1/legacy (istio.io/dataplane-mode: none)"
    assert routes(manifests) == {PINNED: (route,), DNS_NAMED: (route,)}
    verdict = access_matrix(manifests).verdict("rds-demo-1", PINNED)
    assert verdict.decision is Decision.BYPASS
    assert opt_out_findings(manifests) == [
        "Namespace rds-demo-1: The pods of Deployment rds-demo-1/legacy are not captured by ztunnel "
        "(istio.io/dataplane-mode: none), and their egress lets them reach the destinations of 2 ServiceEntries "
        "directly, around the waypoint (istio-egress/orders, istio-egress/postgres-1): remove "
        "istio.io/dataplane-mode: none, or lock namespace rds-demo-1's egress down to in-cluster pods with an egress "
        "NetworkPolicy"
    ]


def test_lockdown_closes_what_a_pod_outside_capture_would_reach(k8s):
    manifests = mesh(k8s, k8s.workload("legacy", labels=NONE), lockdown(k8s))
    assert routes(manifests) == {PINNED: (), DNS_NAMED: ()}
    assert access_matrix(manifests).verdict("rds-demo-1", PINNED).decision is Decision.DENY
    assert opt_out_findings(manifests) == []


def test_a_cidr_the_lockdown_allows_stays_reachable_from_outside_capture(k8s):
    manifests = mesh(k8s, k8s.workload("legacy", labels=NONE), lockdown(k8s, "10.0.0.9/32"))
    assert routes(manifests) == {PINNED: ("direct from Deployment rds-demo-1/legacy (istio.io/dataplane-mode: none)",),
                                 DNS_NAMED: ()}


def test_a_pod_resolving_past_ztunnel_reaches_dns_named_databases_only(k8s):
    legacy = k8s.workload("legacy", annotations={"ambient.istio.io/dns-capture": "false"})
    route = 'direct from Deployment rds-demo-1/legacy (ambient.istio.io/dns-capture: "false")'
    assert routes(mesh(k8s, legacy)) == {PINNED: (), DNS_NAMED: (route,)}
    assert routes(mesh(k8s, legacy, lockdown(k8s))) == {PINNED: (), DNS_NAMED: ()}


def test_dns_capture_annotation_does_nothing_before_istio_1_25(k8s):
    legacy = k8s.workload("legacy", annotations={"ambient.istio.io/dns-capture": "false"})
    assert routes(mesh(k8s, legacy), istio_version="1.24") == {PINNED: (), DNS_NAMED: ()}
    assert opt_out_findings(mesh(k8s, legacy), istio_version="1.24") == []
    assert opt_out_findings(mesh(k8s, legacy), istio_version="1.25") != []


def test_sidecar_injection_is_chosen_by_the_pod_label_not_an_annotation(k8s):
    labelled = k8s.workload("legacy", labels={"sidecar.istio.io/inject": "true"})
    annotated = k8s.workload("legacy", annotations={"sidecar.istio.io/inject": "true"})
    route = 'direct from Deployment rds-demo-1/legacy (sidecar.istio.io/inject: "true")'
    assert routes(mesh(k8s, labelled))[PINNED] == (route,)
    assert routes(mesh(k8s, annotated))[PINNED] == ()


def test_a_host_network_pod_is_not_stopped_by_lockdown(k8s):
    agent = k8s.workload("agent", kind="DaemonSet", host_network=True)
    route = "direct from DaemonSet rds-demo-1/agent (hostNetwork: true)"
    assert routes(mesh(k8s, agent, lockdown(k8s))) == {PINNED: (route,), DNS_NAMED: (route,)}
    assert opt_out_findings(mesh(k8s, agent, lockdown(k8s)))[0].endswith("(istio-egress/orders, istio-egress/postgres-1): "
                                                                          "run it outside the host network")


@pytest.mark.parametrize("kind", ["Pod", "StatefulSet", "Job", "CronJob"])
def test_every_kind_of_pod_template_is_read(k8s, kind):
    assert routes(mesh(k8s, k8s.workload("legacy", kind=kind, labels=NONE)))[PINNED] == (
        f"direct from {kind} rds-demo-1/legacy (istio.io/dataplane-mode: none)",
    )


def test_the_route_belongs_to_the_row_of_the_identity_the_pods_run_as(k8s):
    grant = k8s.policy("allow-checkout", rules=[k8s.rule({"principals": ["cluster.local/ns/rds-demo-1/sa/checkout"]})])
    as_checkout = k8s.workload("checkout-legacy", labels=NONE, service_account="checkout")
    matrix = access_matrix(mesh(k8s, grant, as_checkout))
    assert matrix.verdict("rds-demo-1/sa/checkout", PINNED).bypasses != ()
    assert matrix.verdict("rds-demo-1", PINNED).bypasses == ()


def test_an_account_no_policy_singles_out_is_judged_on_the_bare_namespace_row(k8s):
    grant = k8s.policy("allow-checkout", rules=[k8s.rule({"principals": ["cluster.local/ns/rds-demo-1/sa/checkout"]})])
    as_batch = k8s.workload("batch", labels=NONE, service_account="batch")
    matrix = access_matrix(mesh(k8s, grant, as_batch))
    route = "direct from Deployment rds-demo-1/batch (istio.io/dataplane-mode: none)"
    assert matrix.verdict("rds-demo-1", PINNED).bypasses == (route,)
    assert matrix.verdict("rds-demo-1/sa/checkout", PINNED).bypasses == ()


def test_an_allowed_cell_keeps_its_decision_and_records_the_route(k8s):
    manifests = mesh(k8s, k8s.grant("postgres-1", "rds-demo-1"), k8s.workload("legacy", labels=NONE))
    verdict = access_matrix(manifests).verdict("rds-demo-1", PINNED)
    assert (verdict.decision, verdict.bypasses) == (
        Decision.ALLOW, ("direct from Deployment rds-demo-1/legacy (istio.io/dataplane-mode: none)",)
    )


def test_a_namespace_outside_the_mesh_reports_no_opt_out(k8s):
    manifests = [*mesh(k8s, k8s.workload("legacy", labels=NONE)), k8s.namespace("rds-demo-1", ambient=False)]
    assert opt_out_findings(manifests) == []
    assert access_matrix(manifests, ["rds-demo-1"]).verdict("rds-demo-1", PINNED).decision is Decision.OPEN
