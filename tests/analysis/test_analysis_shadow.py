"""Shadow ServiceEntries: another ServiceEntry claims a host or address of one the waypoint serves.

Upstream: ztunnel src/state/service.rs (get_best_by_host, get_best_by_vip: a service in the client's
namespace first) and src/dns/server.rs (a name is looked up exactly before any wildcard, and a service
without an address is skipped); before 1.30 `by_vip` held one service per address, the last
inserted (src/state/service.rs at 1.29.0), and ztunnel PR #1829 (1.30.0) made addresses prefer the
client's namespace; CIDR addresses in ambient from 1.30 (release note 59797.yaml), exact addresses
matched before CIDRs (get_best_by_vip, then get_best_by_cidr_vip).
"""

from __future__ import annotations

import pytest

from analysis import Code, Decision, access_matrix, analyze, load_manifests

# A database behind the egress waypoint, granted to `shop`; a tenant namespace `team-x` holding
# its own ServiceEntry for the database's host, bound to no waypoint.
TENANT_SHADOWS_A_DATABASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: istio-egress, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-x, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: istio-egress}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE, allowedRoutes: {namespaces: {from: Same}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: orders, namespace: istio-egress, labels: {istio.io/use-waypoint: waypoint}}
spec:
  hosts: [orders.cluster-abc123.eu-west-1.rds.amazonaws.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp-postgres, protocol: TCP}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders-allow-nothing, namespace: istio-egress}
spec:
  targetRefs: [{group: networking.istio.io, kind: ServiceEntry, name: orders}]
  action: ALLOW
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-orders-from-shop, namespace: istio-egress}
spec:
  targetRefs: [{group: networking.istio.io, kind: ServiceEntry, name: orders}]
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [shop]}}]
    to: [{operation: {ports: ["5432"]}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: orders-direct, namespace: team-x}
spec:
  hosts: [orders.cluster-abc123.eu-west-1.rds.amazonaws.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp-postgres, protocol: TCP}]
"""
ORDERS = "istio-egress/orders"
# What the program renders to keep ServiceEntries in the egress namespace.
ADMISSION = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: serviceentry-namespaces}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [networking.istio.io], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [serviceentries]}
  validations:
  - expression: "request.namespace in ['istio-egress']"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: serviceentry-namespaces}
spec: {policyName: serviceentry-namespaces, validationActions: [Deny]}
"""


@pytest.fixture
def shadowed(tmp_path):
    (tmp_path / "mesh.yaml").write_text(TENANT_SHADOWS_A_DATABASE)
    return load_manifests(tmp_path)


def shadow_findings(manifests, **options) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in analyze(manifests, **options) if f.code is Code.SHADOW_SERVICE_ENTRY]


def test_a_tenant_service_entry_for_a_databases_host_is_reported_with_the_clients_it_captures(shadowed):
    assert shadow_findings(shadowed) == [
        'ServiceEntry team-x/orders-direct: Claims host "orders.cluster-abc123.eu-west-1.rds.amazonaws.com" of '
        "ServiceEntry istio-egress/orders, which waypoint istio-egress/waypoint serves: ztunnel gives it the "
        "connections of clients in its own namespace team-x (ztunnel prefers the client's namespace), and may get "
        "those of shop (the tie turns on an order the manifests do not show); it is bound to no waypoint, so they go "
        "straight out; delete it"
    ]


def test_the_cells_it_captures_are_routes_around_the_waypoint(shadowed):
    matrix = access_matrix(shadowed)
    assert matrix.clients == ("shop", "team-x")
    denied, allowed = matrix.verdict("team-x", ORDERS), matrix.verdict("shop", ORDERS)
    assert (denied.decision, denied.bypasses) == (Decision.BYPASS, ("shadow ServiceEntry team-x/orders-direct",))
    assert (allowed.decision, allowed.bypasses) == (Decision.ALLOW, ("shadow ServiceEntry team-x/orders-direct",))


def test_an_admission_policy_keeping_service_entries_out_is_mentioned_but_the_existing_one_stays_reported(tmp_path):
    (tmp_path / "mesh.yaml").write_text(TENANT_SHADOWS_A_DATABASE + "---\n" + ADMISSION)
    [finding] = shadow_findings(load_manifests(tmp_path))
    assert finding.endswith(
        "delete it; ValidatingAdmissionPolicy serviceentry-namespaces refuses new ServiceEntries outside istio-egress, "
        "which keeps further ones out but not this one"
    )


@pytest.mark.parametrize(
    "binding_spec",
    [
        "{policyName: serviceentry-namespaces, validationActions: [Warn]}",
        "{policyName: serviceentry-namespaces, validationActions: [Deny], matchResources: {namespaceSelector: {}}}",
        "{policyName: another-policy, validationActions: [Deny]}",
    ],
)
def test_an_admission_policy_that_does_not_deny_every_namespace_is_not_mentioned(tmp_path, binding_spec):
    admission = ADMISSION.replace("{policyName: serviceentry-namespaces, validationActions: [Deny]}", binding_spec)
    (tmp_path / "mesh.yaml").write_text(TENANT_SHADOWS_A_DATABASE + "---\n" + admission)
    [finding] = shadow_findings(load_manifests(tmp_path))
    assert finding.endswith("so they go straight out; delete it")


def pinned_database(k8s, *extra, addresses=("10.20.30.40",)):
    return [
        k8s.namespace("shop"),
        k8s.namespace("team-x"),
        k8s.namespace(k8s.EGRESS),
        k8s.waypoint(),
        k8s.service_entry("billing", host="10.20.30.40.nip.io", addresses=addresses),
        k8s.allow_nothing("billing"),
        *extra,
    ]


def tenant_entry(k8s, name="billing-direct", **options):
    return k8s.service_entry(name, namespace="team-x", waypoint=None, **options)


def test_an_address_claim_captures_the_tenants_clients_from_istio_1_30(k8s):
    manifests = pinned_database(k8s, tenant_entry(k8s, host="billing.internal", addresses=("10.20.30.40",)))
    [finding] = shadow_findings(manifests, istio_version="1.30")
    assert "Claims address 10.20.30.40 of ServiceEntry istio-egress/billing" in finding
    assert "clients in its own namespace team-x" in finding


def test_before_istio_1_30_the_address_goes_to_whichever_was_written_last(k8s):
    manifests = pinned_database(k8s, tenant_entry(k8s, host="billing.internal", addresses=("10.20.30.40",)))
    [finding] = shadow_findings(manifests, istio_version="1.29")
    assert (
        "gives it the connections of no client for certain: on Istio 1.29 the ServiceEntry written last wins an "
        "address, mesh-wide (1.30.0 prefers the client's namespace), and may get those of shop, team-x"
    ) in finding
    assert access_matrix(manifests, istio_version="1.29").verdict("shop", "istio-egress/billing").decision is Decision.BYPASS


def test_a_range_overlapping_a_pinned_range_claims_it_from_istio_1_30(k8s):
    manifests = pinned_database(k8s, tenant_entry(k8s, host="net.internal", addresses=("10.20.30.0/24",)),
                                addresses=("10.20.30.32/28",))
    assert len(shadow_findings(manifests, istio_version="1.30")) == 1
    # Before 1.30 a CIDR leaves either ServiceEntry out of ambient: nothing is served, nothing claimed.
    assert shadow_findings(manifests, istio_version="1.29") == []


def test_a_range_does_not_claim_an_address_pinned_exactly(k8s):
    manifests = pinned_database(k8s, tenant_entry(k8s, host="net.internal", addresses=("10.20.30.0/24",)))
    assert shadow_findings(manifests) == []


@pytest.mark.parametrize(
    "shadow",
    [
        # A wildcard: ztunnel looks the exact name up first, and finds the database's.
        {"host": "*.nip.io"},
        # No address to resolve the name to: ztunnel's DNS skips it.
        {"host": "10.20.30.40.nip.io", "resolution": "NONE"},
    ],
)
def test_what_ztunnel_never_picks_claims_nothing(k8s, shadow):
    entry = tenant_entry(k8s, host=shadow["host"])
    if "resolution" in shadow:
        entry["spec"]["resolution"] = shadow["resolution"]
    assert shadow_findings(pinned_database(k8s, entry)) == []


def test_a_shadow_bound_to_another_waypoint_is_reported_but_judged_there(k8s):
    tenant_waypoint = k8s.waypoint("tenant-waypoint", "team-x")
    entry = k8s.service_entry("billing-direct", namespace="team-x", host="10.20.30.40.nip.io", waypoint="tenant-waypoint")
    manifests = pinned_database(k8s, tenant_waypoint, entry)
    # Each is served by its own waypoint, so each shadows the other.
    findings = {finding.partition(":")[0]: finding for finding in shadow_findings(manifests)}
    assert sorted(findings) == ["ServiceEntry istio-egress/billing", "ServiceEntry team-x/billing-direct"]
    assert "it is not bound to that waypoint, so its policies do not apply" in findings["ServiceEntry team-x/billing-direct"]
    assert access_matrix(manifests, ["shop"]).verdict("shop", "istio-egress/billing").bypasses == ()


def test_a_duplicate_bound_to_the_same_waypoint_is_no_shadow(k8s):
    duplicate = k8s.service_entry("billing-again", host="10.20.30.40.nip.io")
    assert shadow_findings(pinned_database(k8s, duplicate)) == []
