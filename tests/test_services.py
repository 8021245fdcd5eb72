"""External HTTP and TLS services: L7 grants, TLS origination and request headers (seeds 002, 004)."""

from __future__ import annotations

import pytest

from analysis import MeshIndex, ObjectRef, Request, evaluate
from stack import ConfigError, parse_config
from stack.access import ALLOW, DENY, LIMITED, access_matrix, request_verdict
from tools.mock_engine import RecordingMocks, run_program

from .support import objects

# Seed 004's httpbin example, with the admin identity and everyone else in one client namespace.
HTTPBIN = {
    "name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP", "name": "http"}],
    "tlsOrigination": True, "requestHeaders": {"my-added-header": "added-value"},
    "sampleRequests": [{"method": "GET", "path": "/get"}, {"method": "POST", "path": "/post"}],
}
SEED_004 = {
    "databases": [],
    "services": [HTTPBIN],
    "grants": [{"namespace": "apps", "services": [
        {"name": "httpbin", "serviceAccounts": ["admin"]},
        {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]},
    ]}],
}


@pytest.fixture(scope="module")
def seed_004():
    return run_program(SEED_004, RecordingMocks())


def request(service_account: str | None, method: str, path: str) -> Request:
    return Request("apps", ObjectRef("istio-egress", "httpbin"), 80, service_account=service_account or "default",
                   method=method, path=path)


@pytest.mark.parametrize(("service_account", "method", "path", "decision"), [
    ("admin", "GET", "/get", "ALLOW"),
    ("admin", "POST", "/post", "ALLOW"),
    ("admin", "DELETE", "/anything", "ALLOW"),
    (None, "GET", "/get", "ALLOW"),
    (None, "POST", "/post", "DENY"),
    (None, "GET", "/headers", "DENY"),
])
def test_admin_may_do_anything_and_everyone_else_only_get_slash_get(seed_004, service_account, method, path, decision):
    verdict = evaluate(MeshIndex(seed_004.applied()), request(service_account, method, path))
    assert verdict.decision.value == decision, verdict.reason


def test_other_namespaces_get_nothing_from_the_http_service(seed_004):
    outsider = Request("elsewhere", ObjectRef("istio-egress", "httpbin"), 80, method="GET", path="/get")
    index = MeshIndex([*seed_004.applied(), {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "elsewhere",
                                                            "labels": {"istio.io/dataplane-mode": "ambient"}}}])
    assert evaluate(index, outsider).decision.value == "DENY"


def test_l7_grant_renders_methods_and_paths_only_on_the_http_port(seed_004):
    policy = objects(seed_004, "AuthorizationPolicy")["istio-egress/allow-httpbin-from-apps"]
    assert policy["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/apps/sa/admin"]}}], "to": [{"operation": {"ports": ["80"]}}]},
        {"from": [{"source": {"namespaces": ["apps"]}}],
         "to": [{"operation": {"ports": ["80"], "methods": ["GET"], "paths": ["/get"]}}]},
    ]


def test_tls_origination_sends_port_80_to_443_with_a_simple_tls_destination_rule(seed_004):
    entry = objects(seed_004, "ServiceEntry")["istio-egress/httpbin"]
    assert entry["spec"]["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443}]
    rule = objects(seed_004, "DestinationRule")["istio-egress/httpbin-tls-origination"]
    # `sni` alone would switch off Istio's check of the server's name; subjectAltNames keeps it.
    assert rule["spec"] == {"host": "httpbin.org", "trafficPolicy": {"tls": {
        "mode": "SIMPLE", "sni": "httpbin.org", "subjectAltNames": ["httpbin.org"]}}}


def test_tls_origination_can_trust_a_private_ca_from_a_secret_beside_the_waypoint():
    service = {**HTTPBIN, "tlsCredentialName": "httpbin-cacert"}
    program = run_program({**SEED_004, "services": [service]}, RecordingMocks())
    tls = objects(program, "DestinationRule")["istio-egress/httpbin-tls-origination"]["spec"]["trafficPolicy"]["tls"]
    assert tls["credentialName"] == "httpbin-cacert"
    assert tls["subjectAltNames"] == ["httpbin.org"]


def test_a_ca_without_tls_origination_is_refused():
    problems = _problems({**SEED_004, "services": [{**HTTPBIN, "tlsOrigination": False, "tlsCredentialName": "x-cacert"}]})
    assert problems == ("ambient-egress:services[0].tlsCredentialName: needs tlsOrigination: true; the CA checks the "
                        "certificate of the TLS the waypoint originates")


def test_request_header_is_added_by_an_httproute_bound_to_the_service_entry(seed_004):
    route = objects(seed_004, "HTTPRoute")["istio-egress/httpbin-request-headers"]
    assert route["spec"]["parentRefs"] == [
        {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "httpbin", "port": 80}]
    rule = route["spec"]["rules"][0]
    assert rule["filters"][0]["requestHeaderModifier"]["add"] == [{"name": "my-added-header", "value": "added-value"}]
    assert rule["backendRefs"] == [{"group": "networking.istio.io", "kind": "Hostname", "name": "httpbin.org", "port": 80}]


def test_http_service_is_closed_by_default_like_a_database(seed_004):
    baseline = objects(seed_004, "AuthorizationPolicy")["istio-egress/httpbin-allow-nothing"]
    assert "rules" not in baseline["spec"]


def test_declared_matrix_marks_method_limited_access_and_request_verdicts_follow_the_grant():
    config = parse_config(SEED_004)
    assert access_matrix(config) == {"apps": {"httpbin": LIMITED}, "apps/sa/admin": {"httpbin": ALLOW}}
    assert request_verdict(config, "apps", "httpbin", "GET", "/get") == ALLOW
    assert request_verdict(config, "apps", "httpbin", "POST", "/post") == DENY
    assert request_verdict(config, "apps/sa/admin", "httpbin", "POST", "/post") == ALLOW


def test_tls_service_grant_is_a_plain_tcp_rule():
    program = run_program({"databases": [], "services": [
        {"name": "queue", "host": "192.0.2.5", "ports": [{"number": 5671, "protocol": "TLS"}]}],
        "grants": [{"namespace": "workers", "services": ["queue"]}]}, RecordingMocks())
    policy = objects(program, "AuthorizationPolicy")["istio-egress/allow-queue-from-workers"]
    assert policy["spec"]["rules"] == [
        {"from": [{"source": {"namespaces": ["workers"]}}], "to": [{"operation": {"ports": ["5671"]}}]}]
    entry = objects(program, "ServiceEntry")["istio-egress/queue"]
    assert entry["spec"]["hosts"] == ["192.0.2.5.nip.io"] and entry["spec"]["addresses"] == ["192.0.2.5"]


def _problems(config: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    return "\n".join(raised.value.problems)


@pytest.mark.parametrize("protocol", ["TCP", "TLS", "HTTPS"])
def test_methods_or_paths_on_a_non_http_service_are_rejected_with_the_reason(protocol):
    problems = _problems({"databases": [], "services": [{"name": "api", "host": "api.example.com",
                                                        "ports": [{"number": 443, "protocol": protocol}]}],
                          "grants": [{"namespace": "apps", "services": [{"name": "api", "methods": ["GET"]}]}]})
    assert ("ambient-egress:grants[0].services[0].methods: api has no HTTP port, "
            "and TCP policies may use only ports, namespaces and principals") in problems


def test_l7_on_tcp_registers_nothing():
    mocks = RecordingMocks()
    with pytest.raises(Exception, match="TCP policies may use only ports, namespaces and principals"):
        run_program({"databases": [], "services": [{"name": "api", "host": "api.example.com", "ports": [{"number": 5432}]}],
                     "grants": [{"namespace": "apps", "services": [{"name": "api", "paths": ["/x"]}]}]}, mocks)
    assert mocks.registered == []


@pytest.mark.parametrize(("service", "key", "fragment"), [
    ({"name": "api", "host": "api.example.com", "ports": [{"number": 443, "protocol": "TLS"}], "tlsOrigination": True},
     "services[0].tlsOrigination", "needs every port to be HTTP"),
    ({**HTTPBIN, "tlsOrigination": False, "ports": [{"number": 80, "protocol": "HTTP"}, {"number": 8080, "protocol": "HTTP"}]},
     "services[0].requestHeaders", "needs exactly one HTTP port"),
    ({**HTTPBIN, "ports": [{"number": 80, "protocol": "GRPC"}]},
     "services[0].ports[0].protocol", "must be one of TCP, HTTP, HTTPS, TLS"),
    ({**HTTPBIN, "sampleRequests": [{"method": "GET", "path": "get"}]},
     "services[0].sampleRequests[0].path", "must be an Istio path"),
    ({**HTTPBIN, "requestHeaders": {"Bad Header": "x"}}, "services[0].requestHeaders.Bad Header", "lowercase"),
])
def test_invalid_service_fields_name_their_key(service, key, fragment):
    problems = _problems({"databases": [], "services": [service], "grants": []})
    assert any(line.startswith(f"ambient-egress:{key}") and fragment in line for line in problems.splitlines()), problems


def test_grant_of_an_unknown_service_suggests_the_close_name():
    problems = _problems({**SEED_004, "grants": [{"namespace": "apps", "services": ["htpbin"]}]})
    assert 'ambient-egress:grants[0].services[0]: unknown service \'htpbin\'; did you mean "httpbin"?' in problems


def test_database_and_service_may_not_share_a_name():
    problems = _problems({"databases": [{"name": "httpbin", "address": "10.0.0.1"}], "services": [HTTPBIN], "grants": []})
    assert "ambient-egress:services[0].name: 'httpbin' is also a database (ambient-egress:databases[0].name)" in problems


@pytest.mark.parametrize("path", ["/get", "/api/*", "*.json", "*", "/users/{*}/orders", "/static/{**}"])
def test_istio_path_forms_are_accepted_as_written(path):
    config = parse_config({**SEED_004, "grants": [{"namespace": "apps", "services": [{"name": "httpbin", "paths": [path]}]}]})
    assert config.grants[0].services[0].paths == (path,)


@pytest.mark.parametrize("path", ["get", "/a/*/b", "/users/{**}/x/{**}", "/x/{foo}", ""])
def test_other_path_forms_are_rejected(path):
    problems = _problems({**SEED_004, "grants": [{"namespace": "apps", "services": [{"name": "httpbin", "paths": [path]}]}]})
    assert "ambient-egress:grants[0].services[0].paths[0]: must be an Istio path" in problems
