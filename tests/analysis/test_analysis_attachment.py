"""Which AuthorizationPolicies a waypoint applies to a ServiceEntry's traffic, and dry-run policies.

Upstream (istio/istio at 86c9f01):
  pilot/pkg/model/policyattachment.go   ShouldAttachPolicy: waypoints take only targetRefs policies;
                                        GatewayClass `istio-waypoint` from the root namespace
  pilot/pkg/model/authorization_test.go TestAuthorizationPolicies_ListAuthorizationPolicies,
                                        case "waypoint with default policies" (a GatewayClass policy
                                        in the root namespace joins the per-service one; a selector
                                        policy there does not)
  tests/integration/ambient/baseline_test.go TestAuthorizationWaypointDefaultDeny (selector policies
                                        are not enforced by waypoints; the GatewayClass one is)
  pilot/pkg/security/authz/builder/builder.go isDryRun: `istio.io/dry-run` read with strconv.ParseBool,
                                        dry-run rules go to shadow rules that only log
                                        (testdata/http/dry-run-allow-in.yaml)
GatewayClass targets exist from Istio 1.25.0 (policyattachment.go at tag 1.25.0; absent at 1.24.0).
"""

from __future__ import annotations

import pytest

from analysis import Code, Decision, ObjectRef, Request, analyze, evaluate

ALLOW, DENY, OPEN = Decision.ALLOW, Decision.DENY, Decision.OPEN


def decide(manifests, source="rds-demo-1", **options):
    return evaluate(manifests, Request(source, ObjectRef("istio-egress", "postgres-1"), 5432), **options)


def class_policy(k8s, name="waypoint-default-deny", namespace="istio-system", gateway_class="istio-waypoint"):
    """An allow-nothing policy on a GatewayClass."""
    manifest = k8s.policy(name, gateway_class, namespace=namespace, target_kind="Gateway")
    manifest["spec"]["targetRefs"][0]["kind"] = "GatewayClass"
    return manifest


def only(manifests, code, **options):
    return [finding for finding in analyze(manifests, **options) if finding.code is code]


# GatewayClass policies


def test_gateway_class_policy_in_the_root_namespace_applies_to_every_waypoint(k8s):
    manifests = k8s.one_database(class_policy(k8s))
    verdict = decide(manifests)
    assert verdict.decision is DENY
    assert "istio-system/waypoint-default-deny" in verdict.reason


def test_gateway_class_policy_combines_with_the_service_entrys_policies(k8s):
    # ALLOW policies are OR'ed: the grant on the ServiceEntry allows despite the class-wide allow-nothing.
    grant = k8s.grant("postgres-1", "rds-demo-1")
    manifests = k8s.one_database(class_policy(k8s), grant, clients=("rds-demo-1", "rds-demo-2"))
    assert decide(manifests).decision is ALLOW
    assert decide(manifests, source="rds-demo-2").decision is DENY


def test_gateway_class_policy_follows_the_configured_root_namespace(k8s):
    manifests = k8s.one_database(class_policy(k8s, namespace="istio-config"))
    assert decide(manifests).decision is OPEN
    assert decide(manifests, root_namespace="istio-config").decision is DENY


@pytest.mark.parametrize(
    ("policy_options", "analysis_options", "why"),
    [
        ({"namespace": "istio-egress"}, {}, "not in the root namespace istio-system"),
        ({"gateway_class": "istio"}, {}, "GatewayClass istio is not istio-waypoint"),
        ({}, {"istio_version": "1.24"}, "Istio 1.24 does not apply GatewayClass targets (1.25.0 does)"),
    ],
)
def test_gateway_class_policy_that_applies_nowhere_is_an_error(k8s, policy_options, analysis_options, why):
    manifests = k8s.one_database(class_policy(k8s, **policy_options))
    assert decide(manifests, **analysis_options).decision is OPEN
    [finding] = only(manifests, Code.GATEWAY_CLASS_POLICY_IGNORED, **analysis_options)
    assert why in finding.message


def test_gateway_class_policy_does_not_reach_an_unbound_service_entry(k8s):
    unbound = k8s.service_entry("postgres-1", waypoint=None)
    assert decide(k8s.one_database(class_policy(k8s), service_entry=unbound)).decision is OPEN


# Policies without targetRefs


def test_policy_without_target_refs_beside_the_service_entry_is_ignored_and_reported(k8s):
    namespace_wide = k8s.policy("allow-nothing-namespace-wide")
    del namespace_wide["spec"]["targetRefs"]
    manifests = k8s.one_database(namespace_wide)
    assert decide(manifests).decision is OPEN
    [finding] = only(manifests, Code.POLICY_IGNORED_BY_WAYPOINT)
    assert finding.resource == "AuthorizationPolicy istio-egress/allow-nothing-namespace-wide"


def test_policy_without_target_refs_in_a_client_namespace_is_not_reported(k8s):
    workload_policy = k8s.policy("workloads", namespace="rds-demo-1")
    del workload_policy["spec"]["targetRefs"]
    assert only(k8s.one_database(workload_policy), Code.POLICY_IGNORED_BY_WAYPOINT) == []


# Dry-run


def dry_run(manifest, value="true"):
    manifest["metadata"]["annotations"] = {"istio.io/dry-run": value}
    return manifest


def test_dry_run_deny_is_not_enforced_and_the_reason_says_what_it_would_do(k8s):
    deny = dry_run(k8s.policy("deny-demo-1", action="DENY", rules=[k8s.rule({"namespaces": ["rds-demo-1"]})]))
    verdict = decide(k8s.one_database(k8s.grant("postgres-1", "rds-demo-1"), deny))
    assert verdict.decision is ALLOW
    assert verdict.reason == (
        "allowed by istio-egress/allow-postgres-1-from-rds-demo-1; "
        "with its dry-run policies enforced: DENY (denied by istio-egress/deny-demo-1)"
    )


def test_dry_run_allow_nothing_leaves_the_service_entry_open_and_is_reported(k8s):
    manifests = k8s.one_database(dry_run(k8s.allow_nothing("postgres-1")))
    assert decide(manifests).decision is OPEN
    codes = [f.code for f in analyze(manifests)]
    assert Code.SERVICE_ENTRY_WITHOUT_ALLOW_POLICY in codes
    assert codes[-1] is Code.POLICY_DRY_RUN  # an Info, listed last
    assert only(manifests, Code.POLICY_DRY_RUN)[0].severity == "Info"


@pytest.mark.parametrize(("value", "expected"), [("True", OPEN), ("1", OPEN), ("yes", DENY), ("false", DENY)])
def test_dry_run_annotation_is_read_as_go_reads_a_bool(k8s, value, expected):
    # strconv.ParseBool knows 1, t, T, TRUE, true, True; anything else is enforced.
    assert decide(k8s.one_database(dry_run(k8s.allow_nothing("postgres-1"), value))).decision is expected
