"""Rule fields and `when` conditions beyond namespaces and principals, the requests they see, and
the verdicts the analysis cannot settle (LIMITED, UNDECIDED).

Upstream (istio/istio at 86c9f01 unless a tag is named):
  pilot/pkg/security/authz/model/model.go       which `when` keys exist; an unknown one fails the rule
  pilot/pkg/security/authz/model/generator.go   serviceAccountRegex (`<sa>` is the policy's namespace),
                                                srcTrustDomainGenerator, srcPrincipalGenerator
  pilot/pkg/security/authz/matcher/header.go    HeaderMatcher, HostMatcher
  pkg/config/security/security.go               ValidateAttribute: unknown keys are rejected
  tests/integration/security/authz_test.go      TestAuthz_ServiceAccount, TestAuthz_TrustDomain,
                                                TestAuthz_Conditions
  istio/api security/v1beta1/authorization_policy.proto  Source.serviceAccounts (1.25), trustDomains
"""

from __future__ import annotations

import pytest

from analysis import Decision, ObjectRef, Request, Verdict, evaluate

ALLOW, DENY, OPEN = Decision.ALLOW, Decision.DENY, Decision.OPEN
LIMITED, UNDECIDED = Decision.LIMITED, Decision.UNDECIDED
HTTP_PORT = 8080


def decide(manifests, source: str = "rds-demo-1", port: int = 5432, istio_version: str = "1.30", **request) -> Verdict:
    destination = ObjectRef("istio-egress", "postgres-1")
    return evaluate(manifests, Request(source, destination, port, **request), istio_version=istio_version)


def on_tcp(k8s, *rules, action="ALLOW", clients=("rds-demo-1", "rds-demo-2")):
    return k8s.one_database(k8s.policy("under-test", action=action, rules=list(rules)), clients=clients)


def on_http(k8s, *policies):
    api = k8s.service_entry("postgres-1", host="api.example.com", ports=((HTTP_PORT, "HTTP"),))
    return k8s.one_database(*policies, service_entry=api)


# serviceAccounts (1.25+)


@pytest.mark.parametrize(
    ("account", "source", "expected"),
    [
        ("rds-demo-1/reporting", "rds-demo-1", ALLOW),
        ("rds-demo-2/reporting", "rds-demo-1", DENY),
        # `<sa>` alone is an account in the policy's own namespace (generator.go serviceAccountRegex),
        # istio-egress here, beside the ServiceEntry: not a client namespace's account.
        ("reporting", "rds-demo-1", DENY),
        ("reporting", "istio-egress", ALLOW),
    ],
)
def test_service_accounts_default_to_the_policys_namespace(k8s, account, source, expected):
    manifests = on_tcp(k8s, k8s.rule({"serviceAccounts": [account]}))
    assert decide(manifests, source=source, service_account="reporting").decision is expected


def test_not_service_accounts_excludes_one_account(k8s):
    manifests = on_tcp(k8s, k8s.rule({"notServiceAccounts": ["rds-demo-1/batch"]}))
    assert decide(manifests, service_account="app").decision is ALLOW
    assert decide(manifests, service_account="batch").decision is DENY


def test_service_accounts_of_another_namespace_settle_the_verdict_without_an_account(k8s):
    manifests = on_tcp(k8s, k8s.rule({"serviceAccounts": ["rds-demo-2/app"]}))
    assert decide(manifests).decision is DENY
    assert decide(manifests, source="rds-demo-2").decision is UNDECIDED


def test_service_accounts_before_istio_1_25_leave_the_cell_undecided(k8s):
    manifests = on_tcp(k8s, k8s.rule({"serviceAccounts": ["rds-demo-1/app"]}))
    verdict = decide(manifests, service_account="app", istio_version="1.24")
    assert verdict.decision is UNDECIDED
    assert "serviceAccounts (Istio 1.24 does not know it; 1.25.0 does)" in verdict.reason
    assert decide(manifests, service_account="app", istio_version="1.25.0").decision is ALLOW


# trustDomains (1.30.2+)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # TestAuthz_TrustDomain: cluster.local matches; bad.example.com matches nothing.
        ({"trustDomains": ["cluster.local"]}, ALLOW),
        ({"trustDomains": ["bad.example.com"]}, DENY),
        ({"notTrustDomains": ["cluster.local"]}, DENY),
        ({"notTrustDomains": ["bad.example.com"]}, ALLOW),
        ({"trustDomains": ["cluster.*"]}, ALLOW),
        ({"trustDomains": ["*"]}, ALLOW),
    ],
)
def test_trust_domains_match_the_trust_domain_of_the_principal(k8s, source, expected):
    assert decide(on_tcp(k8s, k8s.rule(source)), service_account="app").decision is expected


def test_trust_domains_are_decided_from_1_30_2_on(k8s):
    manifests = on_tcp(k8s, k8s.rule({"trustDomains": ["cluster.local"]}))
    assert decide(manifests, istio_version="1.30.1").decision is UNDECIDED
    assert decide(manifests, istio_version="1.30.2").decision is ALLOW
    assert decide(manifests, istio_version="1.30").decision is ALLOW  # 1.30 alone: its newest patch


# when conditions


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"key": "source.namespace", "values": ["rds-demo-1"]}, ALLOW),
        ({"key": "source.namespace", "notValues": ["rds-demo-1"]}, DENY),
        ({"key": "source.principal", "values": ["corp.example/ns/rds-demo-1/sa/app"]}, ALLOW),
        ({"key": "source.principal", "values": ["cluster.local/ns/rds-demo-1/sa/app"]}, DENY),
        ({"key": "source.trustDomain", "values": ["corp.example"]}, ALLOW),  # derived from the principal
        ({"key": "source.trustDomain", "values": ["cluster.local"]}, DENY),
        ({"key": "source.serviceAccount", "values": ["rds-demo-1/app"]}, ALLOW),
        ({"key": "destination.port", "values": ["5432"]}, ALLOW),
        ({"key": "destination.port", "notValues": ["5432"]}, DENY),
    ],
)
def test_when_conditions_on_the_source_and_port_are_evaluated(k8s, condition, expected):
    manifests = on_tcp(k8s, k8s.rule(when=[condition]))
    verdict = decide(manifests, service_account="app", trust_domain="corp.example")
    assert verdict.decision is expected


def test_unknown_request_key_on_tcp_is_not_dropped_like_an_http_field(k8s):
    # model.go New fails on the key before the TCP filter drops HTTP fields: a DENY rule is skipped, not
    # widened, and so cannot be said to deny.
    deny = k8s.rule(when=[{"key": "request.method", "values": ["DELETE"]}])
    manifests = k8s.one_database(k8s.grant("postgres-1", "rds-demo-1"), k8s.policy("bad", action="DENY", rules=[deny]))
    assert decide(manifests).decision is UNDECIDED


def test_unknown_when_key_makes_the_cell_undecided_and_names_it(k8s):
    # ValidateAttribute rejects the key; istiod skips the rule if the policy got in anyway.
    manifests = on_tcp(k8s, k8s.rule({"namespaces": ["rds-demo-1"]}, when=[{"key": "source.user", "values": ["x"]}]))
    verdict = decide(manifests)
    assert verdict.decision is UNDECIDED
    assert "when[source.user] (not an Istio attribute: Istio rejects the policy)" in verdict.reason


# request headers and hosts


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Team": "payments"}, ALLOW),  # header names are case-insensitive
        ({"x-team": "billing"}, DENY),
        ({}, DENY),  # a request without the header
        (None, LIMITED),  # any request: some carry it, some do not
    ],
)
def test_request_header_conditions_see_the_requests_headers(k8s, headers, expected):
    rule = k8s.rule({"namespaces": ["rds-demo-1"]}, when=[{"key": "request.headers[x-team]", "values": ["payments"]}])
    manifests = on_http(k8s, k8s.policy("by-team", rules=[rule]))
    assert decide(manifests, port=HTTP_PORT, headers=headers).decision is expected


def test_header_not_values_hold_for_a_request_without_the_header(k8s):
    rule = k8s.rule(when=[{"key": "request.headers[x-debug]", "notValues": ["*"]}])
    manifests = on_http(k8s, k8s.policy("no-debug", rules=[rule]))
    assert decide(manifests, port=HTTP_PORT, headers={}).decision is ALLOW
    assert decide(manifests, port=HTTP_PORT, headers={"x-debug": ""}).decision is DENY  # `*` is presence


@pytest.mark.parametrize(
    ("operation", "host", "expected"),
    [
        ({"hosts": ["api.example.com"]}, None, ALLOW),  # the ServiceEntry's host, by default
        ({"hosts": ["*.example.com"]}, None, ALLOW),
        ({"hosts": ["API.EXAMPLE.COM"]}, None, ALLOW),  # HostMatcher ignores case
        ({"notHosts": ["api.example.com"]}, None, DENY),
        ({"hosts": ["api.example.com"]}, "other.example.com", DENY),
    ],
)
def test_hosts_match_the_requests_host(k8s, operation, host, expected):
    manifests = on_http(k8s, k8s.policy("by-host", rules=[k8s.rule(operation=operation)]))
    assert decide(manifests, port=HTTP_PORT, host=host).decision is expected


# What the analysis does not evaluate: never ALLOW or DENY when it could matter


def test_allow_rule_on_ip_blocks_leaves_the_cell_undecided(k8s):
    manifests = on_tcp(k8s, k8s.rule({"ipBlocks": ["10.0.0.0/8"]}))
    verdict = decide(manifests)
    assert verdict.decision is UNDECIDED
    assert "ipBlocks (client pod IPs are not in the manifests)" in verdict.reason


def test_deny_rule_that_may_match_leaves_an_allowed_cell_undecided(k8s):
    deny = k8s.policy("deny-office", action="DENY", rules=[k8s.rule({"notIpBlocks": ["192.168.0.0/16"]})])
    manifests = k8s.one_database(k8s.grant("postgres-1", "rds-demo-1"), deny, clients=("rds-demo-1", "rds-demo-2"))
    assert decide(manifests).decision is UNDECIDED
    # rds-demo-2 matches no ALLOW rule, so whatever the DENY rule does, it is denied.
    assert decide(manifests, source="rds-demo-2").decision is DENY


def test_unevaluated_clause_that_cannot_change_the_outcome_does_not_matter(k8s):
    rule = k8s.rule({"namespaces": ["rds-demo-2"], "ipBlocks": ["10.0.0.0/8"]})
    assert decide(on_tcp(k8s, rule)).decision is DENY  # the namespace already rules it out


@pytest.mark.parametrize(
    "source",
    [{"requestPrincipals": ["*"]}, {"remoteIpBlocks": ["1.2.3.4"]}],
)
def test_jwt_and_remote_ip_fields_are_not_evaluated(k8s, source):
    manifests = on_http(k8s, k8s.policy("unevaluated", rules=[k8s.rule(source)]))
    assert decide(manifests, port=HTTP_PORT, method="GET", path="/").decision is UNDECIDED


# LIMITED: some requests only


def test_deny_rule_on_a_method_limits_an_allowed_namespace(k8s):
    deny = k8s.policy("deny-delete", action="DENY", rules=[k8s.rule(operation={"methods": ["DELETE"]})])
    allow_demo_1 = k8s.policy("allow-demo-1", rules=[k8s.rule({"namespaces": ["rds-demo-1"]})])
    manifests = on_http(k8s, allow_demo_1, deny)
    verdict = decide(manifests, port=HTTP_PORT)
    assert verdict.decision is LIMITED
    assert verdict.reason.endswith("except requests matching methods of istio-egress/deny-delete")
    assert decide(manifests, port=HTTP_PORT, method="DELETE").decision is DENY


def test_path_limited_allow_rule_makes_the_cell_limited_and_names_the_fields(k8s):
    rule = k8s.rule(operation={"methods": ["GET"], "paths": ["/get"]})
    verdict = decide(on_http(k8s, k8s.policy("get-only", rules=[rule])), port=HTTP_PORT)
    assert verdict == Verdict(LIMITED, "only some requests: istio-egress/get-only allows those matching methods, paths")
