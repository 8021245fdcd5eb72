"""The verdict of a client whose namespace runs sidecars, for one ServiceEntry port (see `sidecar`
and `egress_gateway` for the semantics):

  not visible   the sidecar refuses the host under REGISTRY_ONLY: DENY, a best effort that only
                holds pods with a sidecar; under ALLOW_ANY it passes the connection to the address
                dialled: straight out.
  visible       routed to the egress gateway: the gateway's verdict, its policies judging the
                client's identity as the hop carries it (ALLOW, DENY, LIMITED, UNDECIDED, or OPEN
                without an ALLOW policy); a broken path (no subset, no server, a TLS mismatch, no
                route out, a NetworkPolicy in the way) is DENY. Not routed to it: straight out.
  straight out  OPEN when the namespace's egress NetworkPolicies let its pods reach the destination
                (see `bypass.pods_reach_directly`), else DENY: the lockdown stops it.

Routes around the gateway, for the row of their identity (see `bypass`): a workload that leaves
its sidecar for the destination (see `sidecar.escapes`) and reaches it directly; and an in-cluster
backend both NetworkPolicies let the namespace reach, whose Service its sidecars see (or pass to
under ALLOW_ANY). Where the verdict does not plainly allow, such a route makes the cell BYPASS.

Each path is worked out once per namespace and ServiceEntry port, and the gateway's policies once
per kind of client they tell apart (see `sources`), as for ambient columns.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .bypass import (
    DIRECT,
    Bypass,
    dns_hosts,
    in_cluster_routes,
    named_ips,
    on_row,
    pods_reach_directly,
    reaches_directly,
)
from .egress import external_egress
from .egress_gateway import GatewayPath, Route, gateway_path, mesh_route
from .istio import Istio, OutboundTrafficPolicy
from .manifests import SERVICE, MeshIndex, Resource
from .mesh import service_entry_hosts, service_entry_ports
from .netpol import CLIENT_PODS
from .policy import Facts
from .sidecar import escapes, runs_sidecars, service_visible, sidecar_scopes, visibility
from .sources import SourceKinds
from .verdict import Decision, Verdict
from .workloads import OptOut

# (namespace, service account, trust domain) of a row.
Identity = tuple[str, str, str]


@dataclass(frozen=True)
class Path:
    """What the sidecars of a namespace do with one ServiceEntry port: a verdict for every client,
    or the gateway's, whose policies judge each client."""

    fixed: Verdict | None
    gateway: GatewayPath | None = None
    host: str = ""
    route: Route | None = None  # None when the sidecars do not see the host


def path(index: MeshIndex, namespace: str, service_entry: Resource, port: int, istio: Istio) -> Path:
    """Worked out once per index."""
    key = ("sidecar path", namespace, service_entry.ref, port, istio)
    return index.derived(key, lambda: _path(index, namespace, service_entry, port, istio))


def _path(index: MeshIndex, namespace: str, service_entry: Resource, number: int, istio: Istio) -> Path:
    host = next(iter(service_entry_hosts(service_entry)), "")
    declared = next((port for port in service_entry_ports(service_entry) if port.number == number), None)
    seen = visibility(index, namespace, host, service_entry.ref, service_entry.spec.get("exportTo"), number, istio)
    if not seen.visible:
        if seen.outbound is OutboundTrafficPolicy.REGISTRY_ONLY:
            refused = (
                f"{seen.reason}, and {seen.outbound_set_by} is REGISTRY_ONLY, so its sidecars refuse it (a best effort: "
                "pods without a sidecar are held only by NetworkPolicies)"
            )
            return Path(Verdict(Decision.DENY, refused), host=host)
        return Path(_straight(index, namespace, service_entry, f"{seen.reason}; {seen.outbound_set_by} is ALLOW_ANY, "
                                                                  "so its sidecars pass it to the address dialled"), host=host)
    protocol = declared.protocol if declared else "TCP"
    route = mesh_route(index, namespace, host, number, protocol, istio)
    straight = _straight(index, namespace, service_entry, f"{seen.reason}; {route.straight}") if route.straight else None
    if route.gateway is None or (straight is not None and straight.decision is Decision.OPEN):
        assert straight is not None
        return Path(straight, host=host, route=route)
    gateway = gateway_path(index, namespace, service_entry, host, route, istio)
    return Path(gateway.broken, gateway, host, route)


def _straight(index: MeshIndex, namespace: str, service_entry: Resource, why: str) -> Verdict:
    if pods_reach_directly(index, namespace, CLIENT_PODS, service_entry):
        return Verdict(Decision.OPEN, f"{why}, and no egress NetworkPolicy of namespace {namespace} stops its pods")
    return Verdict(Decision.DENY, f"{why}, which the egress NetworkPolicies of namespace {namespace} stop")


@dataclass(frozen=True)
class Asked:
    """What is asked of every cell beside the client: an HTTP request's method, path, host and
    headers (names in lower case), each None for any."""

    method: str | None = None
    path: str | None = None
    host: str | None = None
    headers: Mapping[str, str] | None = field(default=None, hash=False)

    @classmethod
    def of(cls, method: str | None, path: str | None, host: str | None, headers: Mapping[str, str] | None) -> Asked:
        """Header names in any case, as a request carries them."""
        return cls(method, path, host, None if headers is None else {name.lower(): value for name, value in headers.items()})


def verdict(
    index: MeshIndex, client: tuple[str, str | None, str], service_entry: Resource, port: int, istio: Istio, asked: Asked
) -> Verdict:
    """The verdict of one client, (namespace, service account or None for any, trust domain), for one
    ServiceEntry port, the routes around the gateway aside."""
    found = path(index, client[0], service_entry, port, istio)
    return found.fixed or _at_gateway(found, client, istio, asked)


def _at_gateway(found: Path, client: tuple[str, str | None, str], istio: Istio, asked: Asked) -> Verdict:
    gateway = found.gateway
    assert gateway is not None and gateway.rules is not None
    namespace, account, domain = client
    facts = Facts(
        namespace=namespace, service_account=account, trust_domain=domain, port=gateway.port,
        host=asked.host or found.host, method=asked.method, path=asked.path, headers=asked.headers,
        sni=gateway.sni, mutual_tls=gateway.mutual_tls,
    )
    judged = gateway.rules.decide(facts, istio)
    return Verdict(judged.decision, f"{judged.reason}, at egress gateway {gateway.gateway}")


class SidecarColumns:
    """The sidecar rows of one access matrix, judged column by column (see `matrix`)."""

    def __init__(self, index: MeshIndex, istio: Istio, identities: Sequence[Identity], asked: Asked) -> None:
        self._index, self._istio, self._identities, self._asked = index, istio, identities, asked
        self.rows = [row for row, (namespace, _, _) in enumerate(identities) if runs_sidecars(index, namespace)]

    def column(self, service_entry: Resource, port: int) -> Iterator[tuple[int, Verdict, tuple[Bypass, ...]]]:
        """Each sidecar row's verdict for the ServiceEntry port, with the routes around the gateway open to it."""
        index, istio = self._index, self._istio
        judged: dict[Hashable, Verdict] = {}
        in_cluster: dict[str, list[Bypass]] = {}
        for row in self.rows:
            identity = self._identities[row]
            namespace, account, _ = identity
            found = path(index, namespace, service_entry, port, istio)
            cell = found.fixed
            if cell is None:
                assert found.gateway is not None and found.gateway.rules is not None
                key = (id(found.gateway), SourceKinds.of(found.gateway.rules.policies).key(*identity))
                if key not in judged:
                    judged[key] = _at_gateway(found, identity, istio, self._asked)
                cell = judged[key]
            if namespace not in in_cluster:
                in_cluster[namespace] = _in_cluster(index, namespace, service_entry, port, istio)
            yield row, cell, (*_direct(index, namespace, account, service_entry, port), *in_cluster[namespace])


def _direct(index: MeshIndex, namespace: str, account: str, service_entry: Resource, port: int) -> list[Bypass]:
    """Workloads of the row's identity that leave their sidecar for the destination and reach it."""
    ips, dns_named = named_ips(service_entry), bool(dns_hosts(service_entry))
    return [
        Bypass(DIRECT, escape.workload.kind, escape.workload.ref, escape.written)
        for escape in escapes(index, namespace)
        if on_row(index, namespace, account, escape.workload)
        and escape.covers(ips, dns_named, port)
        and reaches_directly(index, escape.workload, OptOut.NOT_CAPTURED, service_entry)
    ]


def _in_cluster(index: MeshIndex, namespace: str, service_entry: Resource, port: int, istio: Istio) -> list[Bypass]:
    """In-cluster backends the namespace reaches past NetworkPolicies, through a Service its sidecars
    see or, under ALLOW_ANY, pass to."""
    passes = any(scope.outbound is OutboundTrafficPolicy.ALLOW_ANY for scope in sidecar_scopes(index, namespace, istio))
    return [
        route for route in in_cluster_routes(index, namespace, service_entry)
        if route.kind == SERVICE and (passes or service_visible(index, namespace, route.resource, port, istio))
    ]


def other_destinations(index: MeshIndex, namespace: str, istio: Istio) -> Verdict:
    """Any other external destination from a sidecar namespace: refused by sidecars under
    REGISTRY_ONLY unless a workload leaves its sidecar, and by the egress NetworkPolicies (see `egress`)."""
    networked = external_egress(index, namespace)
    if networked.decision is Decision.DENY:
        return networked
    scopes = sidecar_scopes(index, namespace, istio)
    passing = [scope for scope in scopes if scope.outbound is OutboundTrafficPolicy.ALLOW_ANY]
    if passing:
        return Verdict(Decision.OPEN, f"{networked.reason}, and {passing[0].outbound_set_by} is ALLOW_ANY")
    leaving = next((escape for escape in escapes(index, namespace) if escape.covers((), True, 0) or escape.excluded_ports), None)
    if leaving is not None:
        return Verdict(Decision.OPEN, f"{networked.reason}; {leaving.workload} leaves its sidecar ({leaving.written})")
    refused = " and ".join(sorted({scope.outbound_set_by for scope in scopes}))
    return Verdict(Decision.DENY, f"{refused} is REGISTRY_ONLY, so its sidecars refuse hosts outside their registry (a "
                                  f"best effort, which pods without a sidecar escape; {networked.reason})")
