"""The access matrix judges each kind of client once (see analysis/sources.py): every cell must equal
the verdict `evaluate` gives that one client, for any policies, wildcards and negations included.
Clients a policy names, clients it does not, and clients only a pattern or a trust domain tells apart."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import MeshIndex, ObjectRef, Request, access_matrix, evaluate
from analysis.clients import running_as, trust_domain
from analysis.manifests import Resource
from analysis.policy import parse_policy
from analysis.sources import SourceKinds

NAMESPACES = ["team-a", "team-b", "team-c", "shop", "batch"]
ACCOUNTS = ["default", "app", "admin"]
TRUST_DOMAINS = ["cluster.local", "example.org"]
NAMESPACE_VALUES = [*NAMESPACES, "team-*", "*-a", "*"]
PRINCIPAL_VALUES = [
    *(f"{td}/ns/{ns}/sa/{sa}" for td in TRUST_DOMAINS for ns in NAMESPACES[:3] for sa in ACCOUNTS[1:]),
    "*/ns/shop/sa/admin",
    "cluster.local/ns/team-*",
    "*/sa/app",
    "*",
]
SOURCE_FIELDS = {
    "namespaces": NAMESPACE_VALUES,
    "notNamespaces": NAMESPACE_VALUES,
    "principals": PRINCIPAL_VALUES,
    "notPrincipals": PRINCIPAL_VALUES,
    "serviceAccounts": [f"{ns}/{sa}" for ns in NAMESPACES[:3] for sa in ACCOUNTS[1:]],
    "trustDomains": ["example.org", "cluster.*"],
}


@st.composite
def sources(draw) -> dict:
    fields = draw(st.lists(st.sampled_from(sorted(SOURCE_FIELDS)), min_size=1, max_size=2, unique=True))
    return {field: draw(st.lists(st.sampled_from(SOURCE_FIELDS[field]), min_size=1, max_size=3)) for field in fields}


@st.composite
def rules(draw) -> dict:
    rule: dict = {"from": [{"source": source} for source in draw(st.lists(sources(), min_size=1, max_size=2))]}
    if draw(st.booleans()):
        rule["to"] = [{"operation": {"ports": [draw(st.sampled_from(["5432", "6432"]))]}}]
    if draw(st.booleans()):
        rule["when"] = [{"key": "source.namespace", "notValues": [draw(st.sampled_from(NAMESPACE_VALUES))]}]
    return rule


@st.composite
def meshes(draw, k8s) -> list:
    manifests = [*(k8s.namespace(ns) for ns in NAMESPACES), k8s.namespace(k8s.EGRESS), k8s.waypoint()]
    manifests.append(k8s.service_entry("postgres-1", addresses=("10.0.0.1",)))
    for position in range(draw(st.integers(min_value=1, max_value=4))):
        action = draw(st.sampled_from(["ALLOW", "ALLOW", "DENY"]))
        policy = k8s.policy(f"p{position}", action=action, rules=draw(st.lists(rules(), min_size=0, max_size=2)))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            policy["metadata"]["annotations"] = {"istio.io/dry-run": "true"}
        manifests.append(policy)
    return manifests


# The `k8s` fixture only builds manifests, so sharing it across examples is safe.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_every_cell_is_what_evaluate_gives_that_client(k8s, data):
    index = MeshIndex(data.draw(meshes(k8s)))
    rows = [f"{ns}/sa/{sa}" if sa != "default" else ns for ns in NAMESPACES for sa in ACCOUNTS]
    version = data.draw(st.sampled_from(["1.24", "1.30"]))
    matrix = access_matrix(index, rows, istio_version=version)
    service_entry = ObjectRef(k8s.EGRESS, "postgres-1")
    for client in matrix.clients:
        namespace, account = running_as(client)
        # A row runs with the trust domain a principal names it with.
        domain = trust_domain(index, namespace, account)
        request = Request(namespace, service_entry, 5432, service_account=account, trust_domain=domain)
        assert matrix.verdict(client, "istio-egress/postgres-1") == evaluate(index, request, istio_version=version), client


def test_clients_no_literal_names_differ_only_by_trust_domain_and_patterns():
    policy = parse_policy(
        Resource.from_manifest(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "p", "namespace": "istio-egress"},
                "spec": {"rules": [{"from": [{"source": {"namespaces": ["shop", "team-*"]}}]}]},
            }
        )
    )
    kinds = SourceKinds.of([policy])
    assert kinds.named == {"shop"}
    assert kinds.key("batch", "default", "cluster.local") == kinds.key("other", "app", "cluster.local")
    assert kinds.key("batch", "default", "cluster.local") != kinds.key("team-x", "default", "cluster.local")
    assert kinds.key("batch", "default", "cluster.local") != kinds.key("batch", "default", "example.org")
    assert kinds.key("shop", "default", "cluster.local") != kinds.key("shop", "app", "cluster.local")
