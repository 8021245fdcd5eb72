"""`istioctl analyze`-style checks of sidecar mode (see `sidecar`, `egress_gateway` and
`sidecar_access`), each saying how to fix it; reported only where the manifests show namespaces
whose pods get sidecars."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from .bypass import dns_hosts, named_ips, reaches_directly
from .catalogue import Code, Finding, name_list, report
from .clients import client_namespaces
from .egress_gateway import VIRTUAL_SERVICE, GatewayPath
from .istio import Istio
from .manifests import NAMESPACE, SERVICE_ENTRY, MeshIndex, ObjectRef, Resource
from .mesh import service_entry_hosts, service_entry_ports
from .policy import PEER_IDENTITY
from .sidecar import escapes, has_sidecar_resource, runs_sidecars, visibility
from .sidecar_access import path
from .verdict import Decision, Verdict
from .workloads import OptOut


def sidecar_findings(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    clients = [namespace for namespace in client_namespaces(index) if runs_sidecars(index, namespace)]
    if not clients:
        return
    yield from _exported_everywhere(index, clients, istio)
    yield from _without_sidecar_resource(index, clients, istio)
    yield from _paths(index, clients, istio)
    yield from _leaving_sidecars(index)


def _exported_everywhere(index: MeshIndex, clients: list[str], istio: Istio) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        written = [str(value) for value in service_entry.spec.get("exportTo") or []]
        if written and "*" not in written:
            continue
        default = "no exportTo, so Istio's default \"*\" (unless the mesh's defaultServiceExportTo differs)"
        how = 'exportTo "*"' if written else default
        host, port = _host(service_entry), next(iter(service_entry_ports(service_entry)), None)
        seeing = [
            namespace for namespace in clients
            if port is None or visibility(index, namespace, host, service_entry.ref, written, port.number, istio).visible
        ]
        now = f" (now those of {name_list(seeing)})" if seeing else ""
        yield report(
            Code.SERVICE_ENTRY_EXPORTED_EVERYWHERE,
            service_entry,
            f"Has {how}: the sidecars of every namespace a Sidecar resource does not narrow can route {host}{now}, and "
            'REGISTRY_ONLY keeps none of them from it; set exportTo to "." and the namespaces that need it, the egress '
            "gateway's among them",
        )


def _without_sidecar_resource(index: MeshIndex, clients: list[str], istio: Istio) -> Iterator[Finding]:
    for namespace in clients:
        if not has_sidecar_resource(index, namespace, istio):
            yield report(
                Code.NO_SIDECAR_RESOURCE,
                f"{NAMESPACE.kind} {namespace}",
                f"Its pods get sidecars, and no Sidecar resource (in {namespace} or the root namespace {istio.root_namespace}) "
                "narrows what they import, so they see every host exported to them; add a Sidecar whose egress hosts are "
                '"./*", the egress gateway\'s Service and the hosts the namespace is granted',
            )


def _paths(index: MeshIndex, clients: list[str], istio: Istio) -> Iterator[Finding]:
    """Hosts routed around the gateway, hops without mutual TLS and broken paths, one finding per
    ServiceEntry port (or route) naming every namespace it holds for."""
    around: dict[tuple[ObjectRef, int], list[str]] = defaultdict(list)
    unidentified: dict[tuple[ObjectRef, ObjectRef], list[str]] = defaultdict(list)
    broken: dict[tuple[ObjectRef, ObjectRef], tuple[Verdict, list[str]]] = {}
    for service_entry in index.all(SERVICE_ENTRY):
        for port in service_entry_ports(service_entry):
            for namespace in clients:
                found = path(index, namespace, service_entry, port.number, istio)
                if found.route is None:
                    continue  # the sidecars do not see the host
                if found.fixed is not None and found.fixed.decision is Decision.OPEN:
                    around[(service_entry.ref, port.number)].append(namespace)
                    continue
                gateway, virtual_service = found.gateway, found.route.virtual_service
                if gateway is None or virtual_service is None:
                    continue
                key = (virtual_service, service_entry.ref)
                if gateway.broken is not None:
                    broken.setdefault(key, (gateway.broken, []))[1].append(namespace)
                elif gateway.mutual_tls is not True and _reads_identity(gateway):
                    unidentified[key].append(namespace)
    for (entry, number), namespaces in sorted(around.items()):
        yield report(
            Code.ROUTED_AROUND_GATEWAY,
            f"{SERVICE_ENTRY.kind} {entry}",
            f"Port {number} is visible to the sidecars of {name_list(namespaces)} but no VirtualService bound to mesh sends it "
            "to the egress gateway, so they send it straight out, and no egress NetworkPolicy of theirs stops it; route "
            "it to the gateway with a VirtualService (gateways: [mesh]), or lock their egress down to in-cluster pods",
        )
    for (route_ref, entry), namespaces in sorted(unidentified.items()):
        yield report(
            Code.GATEWAY_HOP_WITHOUT_MUTUAL_TLS,
            f"{VIRTUAL_SERVICE.kind} {route_ref}",
            f"Sends ServiceEntry {entry}'s host to the egress gateway (from {name_list(namespaces)}) over a hop that is not "
            "ISTIO_MUTUAL, so the gateway sees no client identity: its ALLOW rules on namespaces or principals never match "
            "(those clients are denied) and its DENY rules on them never match (those clients get through); set tls.mode: "
            "ISTIO_MUTUAL, with sni, on the DestinationRule subset for the gateway's port",
        )
    for (route_ref, entry), (verdict, namespaces) in sorted(broken.items()):
        fail = "fail" if verdict.decision is Decision.DENY else "may fail"
        yield report(
            Code.GATEWAY_PATH_BROKEN,
            f"{VIRTUAL_SERVICE.kind} {route_ref}",
            f"Sends ServiceEntry {entry}'s host to the egress gateway, but connections from {name_list(namespaces)} {fail}: "
            f"{verdict.reason}",
        )


def _reads_identity(gateway: GatewayPath) -> bool:
    """Whether a policy the gateway applies has a clause on the client's identity."""
    assert gateway.rules is not None
    return any(clause.attribute in PEER_IDENTITY for policy in gateway.rules.policies for clause in policy.clauses())


def _leaving_sidecars(index: MeshIndex) -> Iterator[Finding]:
    entries = index.all(SERVICE_ENTRY)
    for namespace in index.all(NAMESPACE):
        for escape in escapes(index, namespace.name):
            reached = [
                str(entry.ref)
                for entry in entries
                if any(escape.covers(named_ips(entry), bool(dns_hosts(entry)), p.number) for p in service_entry_ports(entry))
                and reaches_directly(index, escape.workload, OptOut.NOT_CAPTURED, entry)
            ]
            if not reached:
                continue
            fix = (
                "run it outside the host network"
                if escape.workload.host_network
                else f"remove {escape.written}, or lock namespace {namespace.name}'s egress down to in-cluster pods with an "
                "egress NetworkPolicy"
            )
            yield report(
                Code.WORKLOAD_LEAVES_SIDECAR,
                namespace,
                f"The pods of {escape.workload} leave their sidecar ({escape.written}), and their egress lets them reach the "
                f"destinations of {len(reached)} ServiceEntr{'y' if len(reached) == 1 else 'ies'} directly, around the "
                f"egress gateway ({name_list(reached)}): {fix}",
            )


def _host(service_entry: Resource) -> str:
    return next(iter(service_entry_hosts(service_entry)), str(service_entry.ref))
