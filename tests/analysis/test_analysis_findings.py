from __future__ import annotations

import pytest

from analysis import Code, Finding, analyze


def codes_for(manifests, resource: str) -> set[str]:
    return {finding.code for finding in analyze(manifests) if finding.resource == resource}


def only(manifests, code: Code) -> list[Finding]:
    return [finding for finding in analyze(manifests) if finding.code is code]


def test_clean_seed_yields_no_findings_and_so_no_errors(k8s):
    assert analyze(k8s.seed()) == []


def test_finding_renders_like_istioctl_analyze(k8s):
    manifests = [*k8s.seed(), k8s.grant("postgres-3", "rds-demo-1")]
    [finding] = only(manifests, Code.POLICY_TARGET_NOT_FOUND)
    assert str(finding).startswith(
        'Error [EGW0101] (AuthorizationPolicy istio-egress/allow-postgres-3-from-rds-demo-1) '
        'Referenced ServiceEntry not found: "postgres-3"'
    )


def test_policy_targeting_a_service_entry_in_another_namespace_is_an_error(k8s):
    manifests = [*k8s.seed(), k8s.grant("postgres-1", "rds-demo-1", namespace="rds-demo-1")]
    [finding] = only(manifests, Code.POLICY_TARGET_IN_OTHER_NAMESPACE)
    assert finding.severity == "Error"
    assert finding.resource == "AuthorizationPolicy rds-demo-1/allow-postgres-1-from-rds-demo-1"
    assert "istio-egress" in finding.message


def test_unbound_service_entry_is_an_error(k8s):
    manifests = [*k8s.seed(), k8s.service_entry("postgres-3", waypoint=None), k8s.allow_nothing("postgres-3")]
    assert codes_for(manifests, "ServiceEntry istio-egress/postgres-3") == {Code.SERVICE_ENTRY_NOT_BOUND}


def test_service_entry_bound_to_a_missing_waypoint_is_an_error(k8s):
    manifests = [*k8s.seed(), k8s.service_entry("postgres-3", waypoint="gone"), k8s.allow_nothing("postgres-3")]
    [finding] = only(manifests, Code.WAYPOINT_NOT_FOUND)
    assert (finding.severity, finding.resource) == ("Error", "ServiceEntry istio-egress/postgres-3")
    assert "istio-egress/gone" in finding.message


def test_service_entry_without_allow_policy_is_an_error(k8s):
    manifests = [*k8s.seed(), k8s.service_entry("postgres-3")]
    [finding] = only(manifests, Code.SERVICE_ENTRY_WITHOUT_ALLOW_POLICY)
    assert (finding.severity, finding.resource) == ("Error", "ServiceEntry istio-egress/postgres-3")


def test_deny_policy_alone_does_not_close_a_service_entry(k8s):
    deny = k8s.policy("deny-demo-2", "postgres-3", action="DENY", rules=[k8s.rule({"namespaces": ["rds-demo-2"]})])
    manifests = [*k8s.seed(), k8s.service_entry("postgres-3"), deny]
    assert [f.resource for f in only(manifests, Code.SERVICE_ENTRY_WITHOUT_ALLOW_POLICY)] == [
        "ServiceEntry istio-egress/postgres-3"
    ]


def test_source_namespace_outside_the_mesh_is_a_warning(k8s):
    manifests = [*k8s.seed(), k8s.grant("postgres-1", "db")]
    [finding] = only(manifests, Code.SOURCE_NAMESPACE_NOT_AMBIENT)
    assert finding.severity == "Warning"
    assert finding.resource == "AuthorizationPolicy istio-egress/allow-postgres-1-from-db"


def test_source_namespace_without_manifest_is_a_warning(k8s):
    rule = k8s.rule({"principals": ["cluster.local/ns/rds-demo-3/sa/app"]})
    manifests = [*k8s.seed(), k8s.policy("allow-demo-3", rules=[rule])]
    [finding] = only(manifests, Code.SOURCE_NAMESPACE_NOT_FOUND)
    assert (finding.severity, finding.resource) == ("Warning", "AuthorizationPolicy istio-egress/allow-demo-3")
    assert '"rds-demo-3"' in finding.message


def test_http_only_field_in_allow_rule_on_tcp_is_an_error(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"]})
    manifests = [*k8s.seed(), k8s.policy("allow-get", rules=[rule])]
    [finding] = only(manifests, Code.ALLOW_RULE_NEVER_MATCHES_TCP)
    assert (finding.severity, finding.resource) == ("Error", "AuthorizationPolicy istio-egress/allow-get")
    assert "rules[0]" in finding.message and "methods" in finding.message


def test_http_only_field_in_deny_rule_on_tcp_is_a_warning(k8s):
    rule = k8s.rule(operation={"paths": ["/admin"]})
    manifests = [*k8s.seed(), k8s.policy("deny-admin", action="DENY", rules=[rule])]
    [finding] = only(manifests, Code.DENY_RULE_BROADENED_ON_TCP)
    assert (finding.severity, finding.resource) == ("Warning", "AuthorizationPolicy istio-egress/deny-admin")


def test_http_only_fields_on_http_ports_are_fine(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"], "ports": ["8080"]})
    api = k8s.service_entry("api", ports=((5432, "TCP"), (8080, "HTTP")))
    manifests = [*k8s.seed(), api, k8s.policy("allow-get", "api", rules=[rule])]
    assert only(manifests, Code.ALLOW_RULE_NEVER_MATCHES_TCP) == []


def test_policy_port_the_service_entry_does_not_expose_is_an_error(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, {"ports": ["5433"]})
    manifests = [*k8s.seed(), k8s.policy("allow-wrong-port", rules=[rule])]
    [finding] = only(manifests, Code.POLICY_PORT_NOT_EXPOSED)
    assert (finding.severity, finding.resource) == ("Error", "AuthorizationPolicy istio-egress/allow-wrong-port")
    assert '"5433"' in finding.message


def test_duplicate_host_is_reported_on_every_service_entry_declaring_it(k8s):
    manifests = [*k8s.seed(), k8s.service_entry("postgres-1-copy", namespace="rds-demo-1", host="10.0.0.1.nip.io")]
    findings = only(manifests, Code.DUPLICATE_HOST)
    assert [f.resource for f in findings] == [
        "ServiceEntry istio-egress/postgres-1",
        "ServiceEntry rds-demo-1/postgres-1-copy",
    ]
    assert all(f.severity == "Error" for f in findings)


def test_database_namespace_in_the_mesh_is_an_error(k8s):
    manifests = [k8s.namespace("db"), *k8s.seed()[1:]]
    [finding] = only(manifests, Code.DATABASE_NAMESPACE_IN_MESH)
    assert (finding.severity, finding.resource) == ("Error", "Namespace db")
    assert "Service db/postgres-1 behind ServiceEntry istio-egress/postgres-1" in finding.message


def test_waypoint_namespace_outside_the_mesh_is_a_warning(k8s):
    manifests = [*k8s.seed(), k8s.namespace("istio-egress", ambient=False)]  # later manifests replace earlier ones
    [finding] = only(manifests, Code.WAYPOINT_NAMESPACE_NOT_AMBIENT)
    assert (finding.severity, finding.resource) == ("Warning", "Gateway istio-egress/waypoint")


def test_findings_list_errors_first_then_by_code(k8s):
    manifests = [*k8s.seed(), k8s.grant("postgres-1", "db"), k8s.service_entry("postgres-3", waypoint=None)]
    findings = analyze(manifests)
    assert [f.code for f in findings] == ["EGW0201", "EGW0203", "EGW0106"]


def test_finding_codes_are_unique():
    assert len({code.value for code in Code}) == len(Code)


def test_unknown_condition_key_is_an_error(k8s):
    """pkg/config/security/security.go ValidateAttribute: `unknown attribute`; model.go New fails the rule."""
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, when=[{"key": "request.method", "values": ["GET"]}])
    [finding] = only([*k8s.seed(), k8s.policy("bad-key", rules=[rule])], Code.UNKNOWN_CONDITION_KEY)
    assert (finding.severity, finding.resource) == ("Error", "AuthorizationPolicy istio-egress/bad-key")
    assert '"request.method"' in finding.message


def test_service_accounts_on_istio_1_24_is_an_error_naming_the_release(k8s):
    rule = k8s.rule({"serviceAccounts": ["rds-demo-1/app"]})
    manifests = [*k8s.seed(), k8s.policy("by-account", rules=[rule])]
    [finding] = [f for f in analyze(manifests, istio_version="1.24") if f.code is Code.FIELD_NEEDS_NEWER_ISTIO]
    assert "serviceAccounts, which Istio 1.24 does not have (from 1.25.0)" in finding.message
    assert only(manifests, Code.FIELD_NEEDS_NEWER_ISTIO) == []  # the default, 1.30, has it


def test_path_istio_rejects_is_an_error(k8s):
    """pkg/config/security/security.go CheckValidPathTemplate: `{**}` must be the last operator."""
    api = k8s.service_entry("api", ports=((8080, "HTTP"),))
    rule = k8s.rule(operation={"paths": ["/{**}/items/{*}", "/ok/*"]})
    [finding] = only([*k8s.seed(), api, k8s.policy("bad-path", "api", rules=[rule])], Code.PATH_PATTERN_PROBLEM)
    assert finding.message.startswith('rules[0] path "/{**}/items/{*}" has an operator after {**}')


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}, "rules[0] uses ipBlocks: client pod IPs"),
        ({"when": [{"key": "connection.sni", "values": ["x"]}]}, "rules[0] uses when[connection.sni]"),
    ],
)
def test_fields_the_analysis_cannot_evaluate_are_reported(k8s, rule, expected):
    [finding] = only([*k8s.seed(), k8s.policy("unevaluated", rules=[rule])], Code.RULE_NOT_EVALUATED)
    assert finding.severity == "Warning"
    assert finding.message.startswith(expected)
    assert finding.message.endswith("read UNDECIDED")


def test_custom_policy_is_reported_as_not_evaluated(k8s):
    custom = k8s.policy("ext-authz", action="CUSTOM", rules=[k8s.rule()])
    [finding] = only([*k8s.seed(), custom], Code.RULE_NOT_EVALUATED)
    assert "external authorizer" in finding.message
