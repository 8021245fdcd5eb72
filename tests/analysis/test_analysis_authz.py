from __future__ import annotations

import pytest

from analysis import Decision, ObjectRef, Request, Verdict, evaluate

ALLOW, DENY, OPEN = Decision.ALLOW, Decision.DENY, Decision.OPEN
LIMITED, UNDECIDED = Decision.LIMITED, Decision.UNDECIDED


def decide(manifests, source: str, service_entry: str = "postgres-1", port: int = 5432, **request) -> Verdict:
    return evaluate(manifests, Request(source, ObjectRef("istio-egress", service_entry), port, **request))


def one_database(k8s, *policies, **replaced):
    return k8s.one_database(*policies, **replaced)


@pytest.mark.parametrize(
    ("client", "service_entry", "expected"),
    [
        ("rds-demo-1", "postgres-1", ALLOW),
        ("rds-demo-1", "postgres-2", DENY),
        ("rds-demo-2", "postgres-2", ALLOW),
        ("rds-demo-2", "postgres-1", DENY),
    ],
)
def test_seed_lets_each_namespace_reach_only_its_own_database(k8s, client, service_entry, expected):
    assert decide(k8s.seed(), client, service_entry).decision is expected


def test_allow_verdict_names_the_policy_that_allowed_it(k8s):
    assert decide(k8s.seed(), "rds-demo-1").reason == "allowed by istio-egress/allow-postgres-1-from-rds-demo-1"


def test_deny_verdict_lists_the_allow_policies_that_did_not_match(k8s):
    reason = decide(k8s.seed(), "rds-demo-2").reason
    assert reason == (
        "no ALLOW policy matched (applicable: istio-egress/allow-postgres-1-from-rds-demo-1, "
        "istio-egress/postgres-1-allow-nothing)"
    )


def test_client_namespace_outside_the_mesh_is_open_because_nothing_enforces(k8s):
    verdict = decide(k8s.seed(), "db")
    assert verdict == Verdict(OPEN, "client namespace db is not ambient-enrolled")


def test_client_namespace_without_a_namespace_manifest_is_undecided(k8s):
    verdict = decide(k8s.seed(), "elsewhere")
    assert verdict == Verdict(
        UNDECIDED, "client namespace elsewhere has no Namespace manifest, so whether it is ambient is unknown"
    )


def test_service_entry_without_waypoint_label_is_open(k8s):
    unbound = k8s.service_entry("postgres-1", waypoint=None)
    manifests = one_database(k8s, k8s.allow_nothing("postgres-1"), service_entry=unbound)
    verdict = decide(manifests, "rds-demo-1")
    assert verdict == Verdict(OPEN, "ServiceEntry istio-egress/postgres-1 is not bound to a waypoint")


def test_service_entry_bound_to_a_missing_waypoint_is_open(k8s):
    misbound = k8s.service_entry("postgres-1", waypoint="gone")
    manifests = one_database(k8s, k8s.allow_nothing("postgres-1"), service_entry=misbound)
    verdict = decide(manifests, "rds-demo-1")
    assert verdict.decision is OPEN
    assert "waypoint istio-egress/gone" in verdict.reason


def test_gateway_of_another_class_is_not_a_waypoint(k8s):
    ingress_gateway = k8s.waypoint(gateway_class="istio")
    manifests = one_database(k8s, k8s.allow_nothing("postgres-1"), waypoint=ingress_gateway)
    assert decide(manifests, "rds-demo-1").decision is OPEN


def test_namespace_waypoint_label_binds_its_service_entries(k8s):
    egress = k8s.namespace("istio-egress", labels={"istio.io/use-waypoint": "waypoint"})
    unlabelled = k8s.service_entry("postgres-1", waypoint=None)
    manifests = one_database(k8s, k8s.allow_nothing("postgres-1"), egress_namespace=egress, service_entry=unlabelled)
    assert decide(manifests, "rds-demo-1").decision is DENY


def test_service_entry_label_none_opts_out_of_its_namespace_waypoint(k8s):
    egress = k8s.namespace("istio-egress", labels={"istio.io/use-waypoint": "waypoint"})
    opted_out = k8s.service_entry("postgres-1", waypoint="none")
    manifests = one_database(k8s, k8s.allow_nothing("postgres-1"), egress_namespace=egress, service_entry=opted_out)
    assert decide(manifests, "rds-demo-1").decision is OPEN


def test_use_waypoint_namespace_label_finds_a_waypoint_in_another_namespace(k8s):
    service_entry = k8s.service_entry("postgres-1", waypoint_namespace="mesh-waypoints")
    shared_waypoint = k8s.waypoint(namespace="mesh-waypoints", allowed_namespaces={"from": "All"})
    baseline = k8s.allow_nothing("postgres-1")
    manifests = one_database(k8s, baseline, waypoint=shared_waypoint, service_entry=service_entry)
    assert decide(manifests, "rds-demo-1").decision is DENY


def test_service_entry_without_any_policy_is_open(k8s):
    verdict = decide(one_database(k8s), "rds-demo-1")
    assert verdict == Verdict(OPEN, "no ALLOW policy applies to ServiceEntry istio-egress/postgres-1")


def test_allow_nothing_baseline_denies_every_namespace(k8s):
    assert decide(one_database(k8s, k8s.allow_nothing("postgres-1")), "rds-demo-1").decision is DENY


def test_policy_without_action_is_an_allow_policy(k8s):
    baseline = k8s.allow_nothing("postgres-1")
    del baseline["spec"]["action"]
    assert decide(one_database(k8s, baseline), "rds-demo-1").decision is DENY


def test_deny_policy_wins_over_matching_allow(k8s):
    deny = k8s.policy("deny-demo-1", action="DENY", rules=[k8s.rule({"namespaces": ["rds-demo-1"]})])
    verdict = decide(one_database(k8s, k8s.grant("postgres-1", "rds-demo-1"), deny), "rds-demo-1")
    assert verdict == Verdict(DENY, "denied by istio-egress/deny-demo-1")


def test_deny_policy_alone_leaves_unmatched_namespaces_open(k8s):
    deny = k8s.policy("deny-demo-1", action="DENY", rules=[k8s.rule({"namespaces": ["rds-demo-1"]})])
    manifests = one_database(k8s, deny, clients=("rds-demo-1", "rds-demo-2"))
    assert decide(manifests, "rds-demo-2").decision is OPEN


def test_audit_policies_only_log(k8s):
    audit = k8s.policy("audit", action="AUDIT", rules=[k8s.rule()])
    assert decide(one_database(k8s, audit), "rds-demo-1").decision is OPEN


def test_matching_custom_policy_leaves_the_verdict_to_an_external_authorizer(k8s):
    """A CUSTOM policy hands matching requests to an ext_authz provider before DENY and ALLOW run
    (pilot/pkg/security/authz/builder/builder.go); the manifests cannot tell what it answers."""
    custom = k8s.policy("custom", action="CUSTOM", rules=[k8s.rule({"namespaces": ["rds-demo-1"]})])
    manifests = one_database(k8s, custom, k8s.grant("postgres-1", "rds-demo-1"), clients=("rds-demo-1", "rds-demo-2"))
    verdict = decide(manifests, "rds-demo-1")
    assert verdict.decision is UNDECIDED
    assert "CUSTOM policy istio-egress/custom" in verdict.reason
    assert decide(manifests, "rds-demo-2").decision is DENY  # no ALLOW matches, whatever the provider says


def test_rule_without_from_to_or_when_matches_everything(k8s):
    allow_all = k8s.policy("allow-all", rules=[{}])
    assert decide(one_database(k8s, allow_all), "rds-demo-1").decision is ALLOW


def test_allow_rule_with_http_only_field_never_matches_tcp(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, {"ports": ["5432"], "methods": ["GET"]})
    verdict = decide(one_database(k8s, k8s.policy("allow-get", rules=[rule])), "rds-demo-1")
    assert verdict.decision is DENY


FROM_DEMO_1 = [{"source": {"namespaces": ["rds-demo-1"]}}]


@pytest.mark.parametrize(
    "http_only_rule",
    [
        {"from": [{"source": {"namespaces": ["rds-demo-1"], "requestPrincipals": ["*"]}}]},
        {"from": FROM_DEMO_1, "to": [{"operation": {"hosts": ["postgres-1.nip.io"]}}]},
        {"from": FROM_DEMO_1, "to": [{"operation": {"notPaths": ["/admin"]}}]},
        {"from": FROM_DEMO_1, "when": [{"key": "request.headers[x-team]", "values": ["a"]}]},
    ],
)
def test_every_http_only_field_disables_an_allow_rule_on_tcp(k8s, http_only_rule):
    manifests = one_database(k8s, k8s.policy("http-only", rules=[http_only_rule]))
    assert decide(manifests, "rds-demo-1").decision is DENY


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"methods": ["GET"]}, DENY),  # the rule shrinks to "everything"
        ({"methods": ["GET"], "ports": ["5432"]}, DENY),
        ({"methods": ["GET"], "ports": ["9999"]}, ALLOW),
    ],
)
def test_deny_rule_with_http_only_fields_matches_tcp_on_its_other_fields(k8s, operation, expected):
    deny = k8s.policy("deny-get", action="DENY", rules=[k8s.rule(operation=operation)])
    manifests = one_database(k8s, k8s.grant("postgres-1", "rds-demo-1"), deny)
    assert decide(manifests, "rds-demo-1").decision is expected


@pytest.mark.parametrize(("method", "expected"), [("GET", ALLOW), ("POST", DENY), (None, LIMITED)])
def test_http_fields_are_evaluated_on_http_ports(k8s, method, expected):
    api = k8s.service_entry("postgres-1", ports=((8080, "HTTP"),))
    allow_get = k8s.policy("allow-get", rules=[k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"]})])
    verdict = decide(one_database(k8s, allow_get, service_entry=api), "rds-demo-1", port=8080, method=method)
    assert verdict.decision is expected


def test_request_protocol_overrides_the_declared_port_protocol(k8s):
    allow_get = k8s.policy("allow-get", rules=[k8s.rule(operation={"methods": ["GET"]})])
    manifests = one_database(k8s, allow_get)
    assert decide(manifests, "rds-demo-1", protocol="HTTP", method="GET").decision is ALLOW


def test_not_namespaces_excludes_a_namespace(k8s):
    rule = k8s.rule({"notNamespaces": ["rds-demo-2"]})
    manifests = one_database(k8s, k8s.policy("all-but-demo-2", rules=[rule]), clients=("rds-demo-1", "rds-demo-2"))
    assert decide(manifests, "rds-demo-1").decision is ALLOW
    assert decide(manifests, "rds-demo-2").decision is DENY


@pytest.mark.parametrize(
    ("service_account", "expected"),
    [("reporting", ALLOW), ("batch", DENY), (None, UNDECIDED)],
)
def test_principals_match_only_the_named_service_account(k8s, service_account, expected):
    rule = k8s.rule({"principals": ["cluster.local/ns/rds-demo-1/sa/reporting"]})
    manifests = one_database(k8s, k8s.policy("allow-reporting", rules=[rule]))
    assert decide(manifests, "rds-demo-1", service_account=service_account).decision is expected


def test_namespaces_match_every_service_account_in_the_namespace(k8s):
    manifests = one_database(k8s, k8s.grant("postgres-1", "rds-demo-1"))
    assert decide(manifests, "rds-demo-1", service_account="anything").decision is ALLOW


def test_principal_carries_the_requests_trust_domain(k8s):
    rule = k8s.rule({"principals": ["corp.example/ns/rds-demo-1/sa/reporting"]})
    manifests = one_database(k8s, k8s.policy("allow-reporting", rules=[rule]))
    verdict = decide(manifests, "rds-demo-1", service_account="reporting", trust_domain="corp.example")
    assert verdict.decision is ALLOW


def test_not_principals_turns_on_the_service_account_when_none_is_given(k8s):
    rule = k8s.rule({"notPrincipals": ["cluster.local/ns/rds-demo-1/sa/batch"]})
    manifests = one_database(k8s, k8s.policy("not-batch", rules=[rule]))
    verdict = decide(manifests, "rds-demo-1")
    assert verdict == Verdict(
        UNDECIDED,
        "cannot decide: istio-egress/not-batch turns on notPrincipals (the request names no service account)",
    )
    assert decide(manifests, "rds-demo-1", service_account="app").decision is ALLOW
    assert decide(manifests, "rds-demo-1", service_account="batch").decision is DENY


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("cluster.local/ns/rds-demo-2/sa/app", DENY),  # another namespace: no account of rds-demo-1 is it
        ("cluster.local/ns/rds-demo-1/sa/app", UNDECIDED),
        ("cluster.local/ns/rds-demo-1/*", ALLOW),  # every account of rds-demo-1
        ("cluster.local/ns/rds-demo-2/*", DENY),
        ("*/sa/app", UNDECIDED),
        ("*/ns/rds-demo-2/sa/app", DENY),
        ("*", ALLOW),
    ],
)
def test_principal_patterns_are_settled_by_the_known_namespace_when_the_account_is_not_given(k8s, principal, expected):
    manifests = one_database(k8s, k8s.policy("by-principal", rules=[k8s.rule({"principals": [principal]})]))
    assert decide(manifests, "rds-demo-1").decision is expected


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"ports": ["5432"]}, ALLOW),
        ({"ports": ["5433"]}, DENY),
        ({"notPorts": ["5432"]}, DENY),
        ({"notPorts": ["5433"]}, ALLOW),
        ({"ports": ["54*"]}, DENY),  # ports take exact values only
    ],
)
def test_ports_and_not_ports_compare_the_dialled_port(k8s, operation, expected):
    manifests = one_database(k8s, k8s.policy("by-port", rules=[k8s.rule(operation=operation)]))
    assert decide(manifests, "rds-demo-1").decision is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"namespaces": ["rds-*"]}, ALLOW),
        ({"namespaces": ["*-1"]}, ALLOW),
        ({"namespaces": ["*-2"]}, DENY),
        ({"namespaces": ["*"]}, ALLOW),
        ({"principals": ["cluster.local/ns/rds-demo-1/*"]}, ALLOW),
        ({"principals": ["*/sa/reporting"]}, ALLOW),
        ({"principals": ["*/sa/batch"]}, DENY),
    ],
)
def test_wildcards_match_prefixes_suffixes_and_presence(k8s, source, expected):
    manifests = one_database(k8s, k8s.policy("wildcard", rules=[k8s.rule(source)]))
    assert decide(manifests, "rds-demo-1", service_account="reporting").decision is expected


def test_multiple_from_entries_are_alternatives(k8s):
    rule = {"from": [{"source": {"namespaces": ["rds-demo-1"]}}, {"source": {"namespaces": ["rds-demo-2"]}}]}
    manifests = one_database(k8s, k8s.policy("either", rules=[rule]), clients=("rds-demo-1", "rds-demo-2", "other"))
    assert [decide(manifests, ns).decision for ns in ("rds-demo-1", "rds-demo-2", "other")] == [ALLOW, ALLOW, DENY]


def test_from_to_and_when_must_all_match(k8s):
    rule = k8s.rule(
        {"namespaces": ["rds-demo-1"]},
        {"ports": ["5432"]},
        [{"key": "source.namespace", "notValues": ["rds-demo-1"]}],
    )
    assert decide(one_database(k8s, k8s.policy("contradiction", rules=[rule])), "rds-demo-1").decision is DENY


def test_fields_within_one_source_must_all_match(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-1"], "principals": ["*/sa/reporting"]})
    manifests = one_database(k8s, k8s.policy("both", rules=[rule]))
    assert decide(manifests, "rds-demo-1", service_account="reporting").decision is ALLOW
    assert decide(manifests, "rds-demo-1", service_account="batch").decision is DENY


def test_when_condition_on_destination_port_is_evaluated_on_tcp(k8s):
    rule = k8s.rule(when=[{"key": "destination.port", "values": ["5432"]}])
    assert decide(one_database(k8s, k8s.policy("port-condition", rules=[rule])), "rds-demo-1").decision is ALLOW


def test_policy_in_another_namespace_does_not_apply(k8s):
    misplaced = k8s.grant("postgres-1", "rds-demo-1", namespace="rds-demo-1")
    assert decide(one_database(k8s, misplaced), "rds-demo-1").decision is OPEN
    assert decide(one_database(k8s, misplaced, k8s.allow_nothing("postgres-1")), "rds-demo-1").decision is DENY


def test_deprecated_single_target_ref_still_applies(k8s):
    baseline = k8s.allow_nothing("postgres-1")
    baseline["spec"]["targetRef"] = baseline["spec"].pop("targetRefs")[0]
    assert decide(one_database(k8s, baseline), "rds-demo-1").decision is DENY


def test_policy_on_the_waypoint_applies_to_its_service_entries(k8s):
    on_waypoint = k8s.policy("waypoint-allow-nothing", "waypoint", target_kind="Gateway")
    verdict = decide(one_database(k8s, on_waypoint), "rds-demo-1")
    assert verdict.decision is DENY
    assert "istio-egress/waypoint-allow-nothing" in verdict.reason


def test_port_the_service_entry_does_not_declare_is_dropped_at_the_waypoint(k8s):
    """ztunnel sends every connection to the ServiceEntry's address to the waypoint, on any port; the
    waypoint's main listener has a filter chain per declared service port only, so nothing matches and
    the connection is closed (pilot/pkg/networking/core/listener_waypoint.go, FilterChainMatcher)."""
    pinned = k8s.service_entry("postgres-1", host="10.0.0.1.nip.io", addresses=("10.0.0.1",))
    manifests = one_database(k8s, k8s.grant("postgres-1", "rds-demo-1"), service_entry=pinned)
    verdict = decide(manifests, "rds-demo-1", port=5433)
    assert verdict == Verdict(
        DENY,
        "ServiceEntry istio-egress/postgres-1 does not declare port 5433 (ports: 5432), so the waypoint has no "
        "listener for it and drops the connection",
    )


def test_unknown_service_entry_is_an_error(k8s):
    with pytest.raises(LookupError, match="istio-egress/postgres-9"):
        decide(k8s.seed(), "rds-demo-1", "postgres-9")


def test_namespace_pattern_may_hold_a_star_in_the_middle(k8s):
    rule = k8s.rule({"namespaces": ["rds-*-1"]})
    manifests = one_database(k8s, k8s.policy("glob", rules=[rule]), clients=("rds-demo-1", "rds-demo-2"))
    assert decide(manifests, "rds-demo-1").decision is ALLOW
    assert decide(manifests, "rds-demo-2").decision is DENY


def test_http_paths_are_matched_without_the_query_string(k8s):
    api = k8s.service_entry("postgres-1", ports=((8080, "HTTP"),))
    allow_get = k8s.policy("allow-get", rules=[k8s.rule(operation={"methods": ["GET"], "paths": ["/get"]})])
    verdict = decide(one_database(k8s, allow_get, service_entry=api), "rds-demo-1", port=8080, method="GET",
                     path="/get?x=1")
    assert verdict.decision is ALLOW
