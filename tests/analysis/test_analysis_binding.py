"""Which waypoint serves a ServiceEntry: istiod's binding rules, and findings that say how to fix a
misbinding.

Upstream (istio/istio at 86c9f01):
  pilot/pkg/serviceregistry/ambient/waypoints.go   fetchWaypointForTarget (the ServiceEntry's label
      wins over its namespace's; `none` opts out; use-waypoint-namespace), fetchWaypointForService
      (traffic type `service` or `all` only), AllowsAttachmentFromNamespace and makeAllowedRoutes
      (the HBONE listener's allowedRoutes: Same by default, All, Selector), ReportWaypointAttachmentDenied
  pilot/pkg/serviceregistry/ambient/waypoints_test.go  TestMakeAllowedRoutes ("istio-waypoint defaults
      to same namespace", "... matching listener with allowed routes", "... with selector")
  pilot/pkg/serviceregistry/ambient/services_test.go   TestServiceServices "cross namespace waypoint",
      "cross namespace waypoint denied"
  pilot/pkg/serviceregistry/ambient/ambientindex_test.go TestAmbientIndex_WaypointForWorkloadTraffic
  istioctl/pkg/waypoint/waypoint.go   `--for` sets the Gateway's istio.io/waypoint-for label
"""

from __future__ import annotations

import pytest

from analysis import Code, Decision, ObjectRef, Request, analyze, evaluate

ALLOW, DENY, OPEN, UNDECIDED = Decision.ALLOW, Decision.DENY, Decision.OPEN, Decision.UNDECIDED
SHARED = "mesh-waypoints"


def decide(manifests):
    return evaluate(manifests, Request("rds-demo-1", ObjectRef("istio-egress", "postgres-1"), 5432))


def findings(manifests, code):
    return [finding for finding in analyze(manifests) if finding.code is code]


def cross_namespace(k8s, allowed_namespaces=None, *, egress_labels=None, egress_manifest=True):
    """postgres-1 in istio-egress, bound to the waypoint in namespace mesh-waypoints, with an allow-nothing baseline."""
    egress = k8s.namespace("istio-egress", labels=egress_labels)
    manifests = k8s.one_database(
        k8s.allow_nothing("postgres-1"),
        k8s.namespace(SHARED),
        egress_namespace=egress,
        waypoint=k8s.waypoint(namespace=SHARED, allowed_namespaces=allowed_namespaces),
        service_entry=k8s.service_entry("postgres-1", waypoint_namespace=SHARED),
    )
    return manifests if egress_manifest else [m for m in manifests if m is not egress]


# allowedRoutes


@pytest.mark.parametrize(
    ("allowed_namespaces", "expected"),
    [
        (None, OPEN),  # Same, the default
        ({"from": "Same"}, OPEN),
        ({"from": "All"}, DENY),
        ({"from": "Selector", "selector": {"matchLabels": {"egress": "yes"}}}, DENY),
        ({"from": "Selector", "selector": {"matchLabels": {"egress": "no"}}}, OPEN),
        ({"from": "Selector"}, OPEN),  # a missing selector selects nothing
    ],
)
def test_cross_namespace_waypoint_binds_only_namespaces_its_listener_admits(k8s, allowed_namespaces, expected):
    manifests = cross_namespace(k8s, allowed_namespaces, egress_labels={"egress": "yes"})
    assert decide(manifests).decision is expected


def test_denied_attachment_says_why_and_how_to_fix_it(k8s):
    manifests = cross_namespace(k8s)
    assert decide(manifests).reason == (
        "ServiceEntry istio-egress/postgres-1 asks for waypoint mesh-waypoints/waypoint (labels of ServiceEntry "
        "istio-egress/postgres-1), but its HBONE listener admits only its own namespace mesh-waypoints "
        "(allowedRoutes from: Same), so istiod does not bind it (AttachmentDenied)"
    )
    [finding] = findings(manifests, Code.WAYPOINT_ATTACHMENT_DENIED)
    assert finding.severity == "Error"
    assert "from: All, or from: Selector with a selector matching namespace istio-egress" in finding.message


def test_selector_on_labels_the_manifests_do_not_show_is_undecided(k8s):
    selector = {"from": "Selector", "selector": {"matchLabels": {"egress": "yes"}}}
    manifests = cross_namespace(k8s, selector, egress_manifest=False)
    verdict = decide(manifests)
    assert verdict.decision is UNDECIDED
    assert "the manifests do not show namespace istio-egress's labels" in verdict.reason
    assert findings(manifests, Code.BINDING_NOT_EVALUATED)[0].severity == "Warning"


def test_selector_on_the_name_label_is_decided_without_a_namespace_manifest(k8s):
    # Kubernetes labels every namespace kubernetes.io/metadata.name=<name>.
    by_name = {"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-egress"}}}
    assert decide(cross_namespace(k8s, by_name, egress_manifest=False)).decision is DENY


def test_listener_other_than_hbone_15008_does_not_admit(k8s):
    manifests = cross_namespace(k8s, {"from": "All"})
    [waypoint] = [manifest for manifest in manifests if manifest["kind"] == "Gateway"]
    waypoint["spec"]["listeners"][0]["port"] = 15009
    assert decide(manifests).decision is OPEN


# waypoint-for


@pytest.mark.parametrize(
    ("traffic", "expected"), [("service", DENY), ("all", DENY), ("workload", OPEN), ("none", OPEN)]
)
def test_only_waypoints_for_services_serve_service_entries(k8s, traffic, expected):
    waypoint = k8s.waypoint(labels={"istio.io/waypoint-for": traffic})
    manifests = k8s.one_database(k8s.allow_nothing("postgres-1"), waypoint=waypoint)
    assert decide(manifests).decision is expected


def test_gateway_class_label_sets_the_traffic_type_unless_the_gateway_has_its_own(k8s):
    workload_class = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "istio-waypoint", "labels": {"istio.io/waypoint-for": "workload"}},
        "spec": {"controllerName": "istio.io/mesh-controller"},
    }
    manifests = k8s.one_database(k8s.allow_nothing("postgres-1"), workload_class)
    assert decide(manifests).decision is OPEN
    [finding] = findings(manifests, Code.WAYPOINT_NOT_FOR_SERVICES)
    assert "GatewayClass istio-waypoint is labelled istio.io/waypoint-for=workload" in finding.message
    for_services = k8s.waypoint(labels={"istio.io/waypoint-for": "service"})
    assert decide([*manifests, for_services]).decision is DENY


# use-waypoint labels


def test_service_entry_label_wins_over_its_namespaces(k8s):
    egress = k8s.namespace("istio-egress", labels={"istio.io/use-waypoint": "waypoint"})
    own = k8s.service_entry("postgres-1", waypoint="gone")
    manifests = k8s.one_database(k8s.allow_nothing("postgres-1"), egress_namespace=egress, service_entry=own)
    verdict = decide(manifests)
    # No fallback to the namespace's waypoint: the ServiceEntry's own choice does not exist.
    assert verdict.decision is OPEN
    assert "waypoint istio-egress/gone" in verdict.reason


def test_use_waypoint_none_on_the_service_entry_opts_out_and_says_so(k8s):
    egress = k8s.namespace("istio-egress", labels={"istio.io/use-waypoint": "waypoint"})
    opted_out = k8s.service_entry("postgres-1", waypoint="none")
    manifests = k8s.one_database(k8s.allow_nothing("postgres-1"), egress_namespace=egress, service_entry=opted_out)
    assert decide(manifests).reason == (
        "ServiceEntry istio-egress/postgres-1 opts out of waypoints "
        "(istio.io/use-waypoint: none on ServiceEntry istio-egress/postgres-1)"
    )
    assert [f.code for f in analyze(manifests)] == [Code.SERVICE_ENTRY_NOT_BOUND]


def test_namespace_use_waypoint_namespace_label_is_read_from_the_namespace(k8s):
    egress = k8s.namespace(
        "istio-egress", labels={"istio.io/use-waypoint": "waypoint", "istio.io/use-waypoint-namespace": SHARED}
    )
    manifests = k8s.one_database(
        k8s.allow_nothing("postgres-1"),
        egress_namespace=egress,
        waypoint=k8s.waypoint(namespace=SHARED, allowed_namespaces={"from": "All"}),
        service_entry=k8s.service_entry("postgres-1", waypoint=None),
    )
    assert decide(manifests).decision is DENY
