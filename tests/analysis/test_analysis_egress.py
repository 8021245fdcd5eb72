"""Any other external destination: whether a client's pods reach an address no ServiceEntry declares.

Upstream: ztunnel src/proxy/outbound.rs (an address no service claims is passed straight through);
istio.io ambient/usage/networkpolicy (ambient never bypasses NetworkPolicy; an egress policy to
in-cluster pods only makes the waypoint the only way out; host-network pods are not covered).
Kubernetes NetworkPolicy: a pod no egress policy selects is not isolated; a selected pod gets the
union of the rules of every policy selecting it; an ipBlock admits its cidr less its except ranges.
The 256-address bound of a listed destination is the analysis's own (analysis/egress.py).
"""

from __future__ import annotations

import json

import pytest

from analysis import Decision, MeshIndex, access_matrix, external_egress

IN_CLUSTER = {"to": [{"namespaceSelector": {}}]}


def other(manifests, client: str = "rds-demo-1"):
    return access_matrix(manifests).other_destinations[client]


def lockdown(k8s, *cidrs: str, namespace: str = "rds-demo-1", name: str = "egress-lockdown"):
    egress = [IN_CLUSTER, *([{"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]}] if cidrs else [])]
    return k8s.network_policy(name, namespace, policy_types=["Egress"], egress=egress)


def to_block(k8s, block: dict, *, pod_selector=None, name: str = "out"):
    return k8s.network_policy(name, "rds-demo-1", pod_selector=pod_selector, policy_types=["Egress"],
                              egress=[{"to": [{"ipBlock": block}]}])


def test_without_an_egress_policy_every_external_address_is_open(k8s):
    verdict = other(k8s.seed())
    assert verdict.decision is Decision.OPEN
    assert verdict.reason == (
        "no egress NetworkPolicy of namespace rds-demo-1 selects every pod, so a pod it does not select sends anywhere"
    )


def test_lockdown_to_in_cluster_pods_denies_it(k8s):
    verdict = other([*k8s.seed(), lockdown(k8s)])
    assert verdict.decision is Decision.DENY
    assert verdict.reason == "egress NetworkPolicies (rds-demo-1/egress-lockdown) let pods send only to pods in the cluster"


def test_listed_cidrs_are_named_in_the_reason_merged_and_sorted(k8s):
    manifests = [*k8s.seed(), lockdown(k8s, "169.254.20.10/32", "10.0.0.1/32", "10.0.0.0/32")]
    verdict = other(manifests)
    assert verdict.decision is Decision.DENY
    assert verdict.reason.endswith("only to pods in the cluster, 10.0.0.0/31, 169.254.20.10/32")


@pytest.mark.parametrize(
    ("cidr", "decision"),
    [("10.0.0.0/24", Decision.DENY), ("10.0.0.0/23", Decision.OPEN), ("10.0.0.0/8", Decision.OPEN), ("0.0.0.0/0", Decision.OPEN)],
)
def test_a_network_broader_than_256_addresses_is_open(k8s, cidr, decision):
    assert other([*k8s.seed(), lockdown(k8s, cidr)]).decision is decision


def test_the_reason_names_the_broad_block_and_its_policy(k8s):
    block = {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}
    verdict = other([*k8s.seed(), lockdown(k8s), to_block(k8s, block)])
    assert verdict.decision is Decision.OPEN
    assert verdict.reason.startswith(
        "NetworkPolicy rds-demo-1/out allows egress to ipBlock 0.0.0.0/0 except 10.0.0.0/8, which holds "
    )


def test_except_ranges_narrow_a_block_to_what_it_admits(k8s):
    block = {"cidr": "10.0.0.0/23", "except": ["10.0.1.0/24"]}
    verdict = other([*k8s.seed(), to_block(k8s, block)])
    assert verdict.decision is Decision.DENY
    assert verdict.reason.endswith("let pods send only to 10.0.0.0/24")


def test_an_ipv6_block_for_everything_is_open(k8s):
    assert other([*k8s.seed(), lockdown(k8s), to_block(k8s, {"cidr": "::/0"})]).decision is Decision.OPEN


def test_an_egress_rule_without_to_admits_every_destination(k8s):
    anywhere = k8s.network_policy("anywhere", "rds-demo-1", policy_types=["Egress"], egress=[{}])
    verdict = other([*k8s.seed(), lockdown(k8s), anywhere])
    assert (verdict.decision, verdict.reason) == (
        Decision.OPEN, "NetworkPolicy rds-demo-1/anywhere has an egress rule without `to`: every destination"
    )


def test_deny_all_egress_sends_nowhere(k8s):
    verdict = other([*k8s.seed(), k8s.network_policy("deny-all", "rds-demo-1", policy_types=["Egress"])])
    assert verdict.decision is Decision.DENY
    assert verdict.reason.endswith("nowhere (every egress connection is denied)")


def test_a_policy_isolating_only_some_pods_leaves_the_others_open(k8s):
    web_only = k8s.network_policy("web", "rds-demo-1", pod_selector={"matchLabels": {"app": "web"}},
                                  policy_types=["Egress"], egress=[IN_CLUSTER])
    assert other([*k8s.seed(), web_only]).decision is Decision.OPEN


def test_rules_of_a_policy_that_may_select_some_pods_are_added_to_the_lockdown(k8s):
    migrator = to_block(k8s, {"cidr": "0.0.0.0/0"}, pod_selector={"matchLabels": {"app": "migrator"}}, name="migrator")
    assert other([*k8s.seed(), lockdown(k8s), migrator]).decision is Decision.OPEN


def test_an_ingress_policy_isolates_nothing_for_egress(k8s):
    ingress_only = k8s.network_policy("in", "rds-demo-1", policy_types=["Ingress"], ingress=[])
    assert other([*k8s.seed(), ingress_only]).decision is Decision.OPEN


def test_another_namespaces_lockdown_does_not_apply(k8s):
    matrix = access_matrix([*k8s.seed(), lockdown(k8s)])
    assert matrix.other_destinations["rds-demo-1"].decision is Decision.DENY
    assert matrix.other_destinations["rds-demo-2"].decision is Decision.OPEN


def test_a_host_network_pod_is_open_whatever_the_lockdown(k8s):
    agent = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "rds-demo-1"},
        "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"hostNetwork": True}}},
    }
    verdict = other([*k8s.seed(), lockdown(k8s), agent])
    assert verdict.decision is Decision.OPEN
    assert verdict.reason.startswith("DaemonSet rds-demo-1/agent runs in the host network")


def test_every_row_of_a_namespace_shares_its_verdict(k8s):
    manifests = [*k8s.seed(), k8s.namespace("shop"), k8s.grant_service_accounts("postgres-1", "shop", "checkout"),
                 lockdown(k8s, namespace="shop")]
    matrix = access_matrix(manifests)
    assert matrix.other_destinations["shop/sa/checkout"] == matrix.other_destinations["shop"]
    assert matrix.other_destinations["shop"] == external_egress(MeshIndex(manifests), "shop")


def test_json_carries_each_clients_verdict_and_reason(k8s):
    document = json.loads(access_matrix([*k8s.seed(), lockdown(k8s)]).to_json())
    assert document["other_destinations"] == {"rds-demo-1": "DENY", "rds-demo-2": "OPEN"}
    assert document["other_destination_reasons"]["rds-demo-2"].startswith("no egress NetworkPolicy of namespace rds-demo-2")
