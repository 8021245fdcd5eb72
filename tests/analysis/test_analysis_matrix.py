from __future__ import annotations

import json

import pytest

from analysis import Decision, HttpRequest, MeshIndex, access_matrix, default_clients
from tests.support import SEED_000_TABLE


def test_seed_matrix_has_the_four_expected_verdicts(k8s):
    matrix = access_matrix(k8s.seed())
    assert matrix.to_dict()["cells"] == SEED_000_TABLE


def test_default_clients_are_policy_sources_and_ambient_namespaces_minus_egress_machinery(k8s):
    manifests = [
        *k8s.seed(),
        k8s.namespace("analytics"),
        k8s.grant("postgres-1", "legacy"),
        k8s.policy("by-principal", rules=[k8s.rule({"principals": ["cluster.local/ns/batch/sa/job"]})]),
        k8s.policy("by-wildcard", rules=[k8s.rule({"namespaces": ["team-*"]})]),
    ]
    # db is neither ambient nor named; istio-egress hosts the waypoint; wildcards name no namespace;
    # a principal names its namespace and its service account.
    assert default_clients(MeshIndex(manifests)) == (
        "analytics",
        "batch",
        "batch/sa/job",
        "legacy",
        "rds-demo-1",
        "rds-demo-2",
    )


def test_explicit_clients_replace_the_default_rows(k8s):
    matrix = access_matrix(k8s.seed(), clients=["db", "rds-demo-1", "db"])
    assert matrix.clients == ("db", "rds-demo-1")
    assert matrix.verdict("db", "istio-egress/postgres-1").decision is Decision.OPEN


def test_multi_port_service_entry_gets_one_column_per_port(k8s):
    both = k8s.service_entry("pg-pool", ports=((5432, "TCP"), (6432, "TCP")))
    matrix = access_matrix([*k8s.seed(), both, k8s.allow_nothing("pg-pool")])
    labels = [destination.label for destination in matrix.destinations]
    assert labels == [
        "istio-egress/pg-pool:5432",
        "istio-egress/pg-pool:6432",
        "istio-egress/postgres-1",
        "istio-egress/postgres-2",
    ]


def test_json_lists_clients_destinations_cells_reasons_bypasses_and_other_destinations(k8s):
    document = json.loads(access_matrix(k8s.seed()).to_json())
    assert sorted(document) == [
        "bypasses",
        "cells",
        "clients",
        "destinations",
        "other_destination_reasons",
        "other_destinations",
        "reasons",
    ]
    assert document["clients"] == ["rds-demo-1", "rds-demo-2"]
    assert document["destinations"] == ["istio-egress/postgres-1", "istio-egress/postgres-2"]
    assert document["reasons"]["rds-demo-1"]["istio-egress/postgres-1"].startswith("allowed by ")
    assert document["bypasses"] == {}


def test_json_is_stable_whatever_the_manifest_order(k8s):
    assert access_matrix(k8s.seed()).to_json() == access_matrix(list(reversed(k8s.seed()))).to_json()


def test_unprotected_seed_marks_the_deny_cells_as_bypass(k8s):
    matrix = access_matrix(k8s.seed(protected=False))
    assert matrix.to_dict()["cells"] == {
        "rds-demo-1": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "BYPASS"},
        "rds-demo-2": {"istio-egress/postgres-1": "BYPASS", "istio-egress/postgres-2": "ALLOW"},
    }
    verdict = matrix.verdict("rds-demo-2", "istio-egress/postgres-1")
    assert verdict.bypasses == ("raw IP 10.0.0.1", "in-cluster db/postgres-1")
    assert verdict.reason.startswith("no ALLOW policy matched")
    assert verdict.reason.endswith("; reachable around the waypoint via raw IP 10.0.0.1, in-cluster db/postgres-1")


def test_allowed_cell_keeps_its_decision_and_records_the_bypasses(k8s):
    verdict = access_matrix(k8s.seed(protected=False)).verdict("rds-demo-1", "istio-egress/postgres-1")
    assert verdict.decision is Decision.ALLOW
    assert verdict.bypasses == ("raw IP 10.0.0.1", "in-cluster db/postgres-1")


def test_json_lists_bypasses_only_for_the_cells_that_have_them(k8s):
    manifests = [m for m in k8s.seed() if m["metadata"]["name"] != "postgres-2-from-egress-waypoint"]
    document = access_matrix(manifests).to_dict()
    assert document["bypasses"] == {
        "rds-demo-1": {"istio-egress/postgres-2": ["in-cluster db/postgres-2"]},
        "rds-demo-2": {"istio-egress/postgres-2": ["in-cluster db/postgres-2"]},
    }


def test_service_account_grant_yields_a_denied_namespace_row_and_an_allowed_account_row(k8s):
    manifests = [*k8s.seed(), k8s.namespace("shop"), k8s.grant_service_accounts("postgres-1", "shop", "checkout")]
    matrix = access_matrix(manifests)
    assert matrix.clients == ("rds-demo-1", "rds-demo-2", "shop", "shop/sa/checkout")
    assert matrix.verdict("shop", "istio-egress/postgres-1").decision is Decision.DENY
    assert matrix.verdict("shop/sa/checkout", "istio-egress/postgres-1").decision is Decision.ALLOW
    assert matrix.verdict("shop/sa/checkout", "istio-egress/postgres-2").decision is Decision.DENY


def test_account_row_runs_in_the_trust_domain_its_principal_names(k8s):
    grant = k8s.grant_service_accounts("postgres-1", "shop", "checkout", trust_domain="example.org")
    matrix = access_matrix([*k8s.seed(), k8s.namespace("shop"), grant])
    assert matrix.verdict("shop/sa/checkout", "istio-egress/postgres-1").decision is Decision.ALLOW


def test_bare_namespace_row_is_the_default_service_account(k8s):
    grant = k8s.grant_service_accounts("postgres-1", "shop", "default", trust_domain="example.org")
    matrix = access_matrix([*k8s.seed(), k8s.namespace("shop"), grant])
    assert "shop/sa/default" not in matrix.clients
    assert matrix.verdict("shop", "istio-egress/postgres-1").decision is Decision.ALLOW


def test_explicit_service_account_rows_are_evaluated_as_that_account(k8s):
    manifests = [*k8s.seed(), k8s.namespace("shop"), k8s.grant_service_accounts("postgres-1", "shop", "checkout")]
    matrix = access_matrix(manifests, clients=["shop/sa/checkout", "shop/sa/cart"])
    assert matrix.verdict("shop/sa/checkout", "istio-egress/postgres-1").decision is Decision.ALLOW
    assert matrix.verdict("shop/sa/cart", "istio-egress/postgres-1").decision is Decision.DENY


def test_only_allow_and_deny_policies_name_clients(k8s):
    job = k8s.rule({"principals": ["cluster.local/ns/batch/sa/job"]})
    audit = k8s.policy("audit-batch", action="AUDIT", rules=[job])
    assert default_clients(MeshIndex([*k8s.seed(), audit])) == ("rds-demo-1", "rds-demo-2")


def http_service(k8s):
    api = k8s.service_entry("api", host="api.example.com", ports=((8080, "HTTP"),))
    get_only = k8s.policy("get-only", "api", rules=[k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"]})])
    return [*k8s.seed(), api, get_only]


def test_http_cell_limited_by_method_is_limited_for_every_request_and_decided_for_one(k8s):
    manifests = http_service(k8s)
    assert access_matrix(manifests).verdict("rds-demo-1", "istio-egress/api").decision is Decision.LIMITED
    for text, expected in (("GET:/x", Decision.ALLOW), ("POST:/x", Decision.DENY)):
        matrix = access_matrix(manifests, request=HttpRequest.parse(text))
        assert matrix.verdict("rds-demo-1", "istio-egress/api").decision is expected
        # TCP cells are connections: the request's method means nothing there.
        assert matrix.verdict("rds-demo-1", "istio-egress/postgres-1").decision is Decision.ALLOW


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("GET:/get", HttpRequest("GET", "/get")),
        (
            "POST:/post?x=1 host=api.example.com X-Team=a",
            HttpRequest("POST", "/post?x=1", "api.example.com", {"x-team": "a"}),
        ),
    ],
)
def test_http_request_reads_method_path_host_and_headers(text, parsed):
    assert HttpRequest.parse(text) == parsed


@pytest.mark.parametrize("text", ["", "GET", "GET:get", ":/get", "GET:/get team"])
def test_malformed_http_request_says_what_it_expects(text):
    with pytest.raises(ValueError, match=r"METHOD:/PATH|name=value"):
        HttpRequest.parse(text)


def test_a_cell_is_asked_for_its_verdict_decision_or_reason_and_unknown_ones_raise(k8s):
    matrix = access_matrix(k8s.seed())
    verdict = matrix.verdict("rds-demo-1", "istio-egress/postgres-2")
    assert matrix.decision("rds-demo-1", "istio-egress/postgres-2") is verdict.decision is Decision.DENY
    assert matrix.reason("rds-demo-1", "istio-egress/postgres-2") == verdict.reason
    with pytest.raises(KeyError):
        matrix.verdict("rds-demo-3", "istio-egress/postgres-2")


def test_cells_are_a_mapping_of_every_client_and_destination(k8s):
    matrix = access_matrix(k8s.seed())
    assert len(matrix.cells) == 4
    assert list(matrix.cells) == [
        ("rds-demo-1", "istio-egress/postgres-1"),
        ("rds-demo-1", "istio-egress/postgres-2"),
        ("rds-demo-2", "istio-egress/postgres-1"),
        ("rds-demo-2", "istio-egress/postgres-2"),
    ]
    assert matrix.cells.get(("rds-demo-2", "istio-egress/postgres-2")).decision is Decision.ALLOW
    assert matrix.cells.get(("nobody", "istio-egress/postgres-2")) is None


def test_cells_of_one_kind_of_client_share_one_verdict_and_so_one_reason(k8s):
    """Reasons are kept once per distinct verdict, not once per cell."""
    manifests = [*k8s.seed(), *(k8s.namespace(f"team-{index}") for index in range(5))]
    matrix = access_matrix(manifests)
    denied = {id(matrix.verdict(f"team-{index}", "istio-egress/postgres-1")) for index in range(5)}
    assert len(denied) == 1


def test_json_without_reasons_keeps_decisions_and_routes_only(k8s):
    document = access_matrix(k8s.seed(protected=False)).to_dict(reasons=False)
    assert sorted(document) == ["bypasses", "cells", "clients", "destinations", "other_destinations"]
    assert document["bypasses"]["rds-demo-2"]["istio-egress/postgres-1"] == ["raw IP 10.0.0.1", "in-cluster db/postgres-1"]
