"""Sidecar mode's findings: each fires on a minimal broken manifest set and names the fix; none fires
on the seed topology as the project renders it (the program's own renderings: tests/test_sidecar_analysis.py);
and the waypoint's checks keep quiet where the manifests show sidecars and nothing of ambient."""

from __future__ import annotations

import pytest

from analysis import Code, analyze


def codes(manifests, **options) -> list[Code]:
    return [finding.code for finding in analyze(manifests, **options)]


def findings_of(code: Code, manifests) -> list[str]:
    return [finding.message for finding in analyze(manifests) if finding.code is code]


def without(manifests, kind: str, name: str) -> list[dict]:
    return [m for m in manifests if not (m["kind"] == kind and m["metadata"]["name"] == name)]


def test_the_seed_topology_in_sidecar_mode_has_no_finding(k8s):
    assert analyze(k8s.sidecar_seed()) == []


def test_a_service_entry_exported_everywhere(k8s):
    manifests = k8s.sidecar_seed()
    next(m for m in manifests if m["metadata"]["name"] == "postgres-1" and m["kind"] == "ServiceEntry")["spec"].pop("exportTo")
    [message] = findings_of(Code.SERVICE_ENTRY_EXPORTED_EVERYWHERE, manifests)
    assert "Has no exportTo, so Istio's default \"*\"" in message
    assert "(now those of rds-demo-1)" in message  # rds-demo-2's Sidecar does not import it
    assert 'set exportTo to "."' in message


def test_a_service_entry_exported_everywhere_matters_only_where_sidecars_run(k8s):
    ambient = [k8s.namespace("rds-demo-1"), k8s.namespace("istio-egress"), k8s.waypoint(),
               k8s.service_entry("postgres-1", addresses=("10.0.0.1",)), k8s.allow_nothing("postgres-1")]
    assert Code.SERVICE_ENTRY_EXPORTED_EVERYWHERE not in codes(ambient)


def test_an_injected_namespace_without_a_sidecar_resource(k8s):
    manifests = without(k8s.sidecar_seed(), "Sidecar", "egress-visibility")
    assert codes(manifests).count(Code.NO_SIDECAR_RESOURCE) == 2
    root = k8s.sidecar("istio-system", "./*", "istio-system/*", name="default")
    assert Code.NO_SIDECAR_RESOURCE not in codes([*manifests, root])


def test_a_visible_host_routed_around_the_gateway(k8s):
    manifests = k8s.sidecar_seed()
    route = next(m for m in manifests if m["metadata"]["name"] == "postgres-1-through-egress-gateway")
    route["spec"]["tcp"].pop(0)
    [message] = findings_of(Code.ROUTED_AROUND_GATEWAY, manifests)
    assert message.startswith("Port 5432 is visible to the sidecars of rds-demo-1 but no VirtualService bound to mesh")
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-1", egress=[{"to": [{"namespaceSelector": {}}]}])
    assert Code.ROUTED_AROUND_GATEWAY not in codes([*manifests, lockdown])


def test_a_hop_without_mutual_tls_under_identity_rules(k8s):
    manifests = k8s.sidecar_seed()
    hop = next(m for m in manifests if m["metadata"]["name"] == "postgres-1-via-egress-gateway")
    hop["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"] = "DISABLE"
    server = next(m for m in manifests if m["metadata"]["name"] == "egress-postgres-1")
    server["spec"]["servers"][0].pop("tls")
    server["spec"]["servers"][0]["port"]["protocol"] = "TCP"
    [message] = findings_of(Code.GATEWAY_HOP_WITHOUT_MUTUAL_TLS, manifests)
    assert "ALLOW rules on namespaces or principals never match" in message
    assert "DENY rules on them never match (those clients get through)" in message
    assert "set tls.mode: ISTIO_MUTUAL" in message


def test_a_broken_path_to_the_gateway(k8s):
    manifests = k8s.sidecar_seed()
    hop = next(m for m in manifests if m["metadata"]["name"] == "postgres-1-via-egress-gateway")
    hop["metadata"]["namespace"] = "istio-egress"  # where no sidecar looks for it
    [message] = findings_of(Code.GATEWAY_PATH_BROKEN, manifests)
    assert message.startswith("Sends ServiceEntry istio-egress/postgres-1's host to the egress gateway, but connections "
                              "from rds-demo-1 fail: ")
    assert "defines subset postgres-1" in message


@pytest.mark.parametrize(("labels", "annotations", "how"), [
    ({"sidecar.istio.io/inject": "false"}, None, 'sidecar.istio.io/inject: "false"'),
    (None, {"traffic.sidecar.istio.io/excludeOutboundPorts": "5432"}, "excludeOutboundPorts"),
])
def test_a_workload_that_leaves_its_sidecar(k8s, labels, annotations, how):
    manifests = [*k8s.sidecar_seed(), k8s.workload("batch", "rds-demo-2", labels=labels, annotations=annotations)]
    [message] = findings_of(Code.WORKLOAD_LEAVES_SIDECAR, manifests)
    assert message.startswith("The pods of Deployment rds-demo-2/batch leave their sidecar (")
    assert how in message
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-2", egress=[{"to": [{"namespaceSelector": {}}]}])
    assert Code.WORKLOAD_LEAVES_SIDECAR not in codes([*manifests, lockdown])


def test_waypoint_checks_keep_quiet_where_only_sidecars_run_but_not_beside_ambient(k8s):
    """Unbound ServiceEntries and gateway policies naming sidecar namespaces are how sidecar mode
    works; beside an ambient namespace, the ServiceEntry is open to it past any waypoint."""
    assert Code.SERVICE_ENTRY_NOT_BOUND not in codes(k8s.sidecar_seed())
    mixed = [*k8s.sidecar_seed(), k8s.namespace("rds-demo-3")]
    assert Code.SERVICE_ENTRY_NOT_BOUND in codes(mixed)
    assert Code.SOURCE_NAMESPACE_NOT_AMBIENT not in codes(mixed)  # the gateway's policies are no waypoint's


def test_a_waypoint_policy_naming_a_sidecar_namespace_is_still_reported(k8s):
    manifests = k8s.one_database(k8s.allow_nothing("postgres-1"), k8s.grant("postgres-1", "rds-demo-2"))
    manifests.append(k8s.injected("rds-demo-2"))
    [finding] = [f for f in analyze(manifests) if f.code is Code.SOURCE_NAMESPACE_NOT_AMBIENT]
    assert 'Source namespace "rds-demo-2" runs sidecars' in finding.message


def test_connection_sni_at_the_gateway_is_evaluated_not_reported(k8s):
    assert Code.RULE_NOT_EVALUATED not in codes(k8s.sidecar_seed())
    at_waypoint = k8s.one_database(k8s.policy("sni", rules=[k8s.rule(when=[{"key": "connection.sni", "values": ["a"]}])]))
    assert Code.RULE_NOT_EVALUATED in codes(at_waypoint)
