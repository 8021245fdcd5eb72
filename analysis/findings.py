"""`istioctl analyze`-style checks of an egress configuration, each finding saying how to fix it
(`policy_findings`: AuthorizationPolicies; `tls`: TLS origination; `sidecar_findings`: sidecar mode)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from .attachment import applicable_policies
from .backends import backends
from .binding import WAYPOINT_FOR, Problem, waypoint_binding
from .bypass import (
    IN_CLUSTER,
    RAW_IP,
    Bypass,
    bypasses,
    namespace_routes_possible,
    opted_out,
    reaches_directly,
    unpinnable_hosts,
)
from .catalogue import Code, Finding, name_list, report
from .clients import client_namespaces
from .egress import external_egress
from .istio import DEFAULT_ROOT_NAMESPACE, NEWEST_SUPPORTED, Behaviour, Istio, IstioVersion, OutboundTrafficPolicy
from .manifests import (
    GATEWAY,
    NAMESPACE,
    SERVICE_ENTRY,
    Mesh,
    MeshIndex,
    Resource,
    as_index,
)
from .mesh import (
    DATAPLANE_MODE,
    USE_WAYPOINT,
    USE_WAYPOINT_NAMESPACE,
    Enrollment,
    enrollment,
    is_waypoint,
    service_entry_hosts,
)
from .policy_findings import policy_findings
from .shadow import Shadow, all_shadows, service_entry_admission
from .sidecar import sidecar_only
from .sidecar_findings import sidecar_findings
from .tls import tls_findings
from .verdict import Decision


def analyze(
    mesh: Mesh,
    *,
    istio_version: IstioVersion | str = NEWEST_SUPPORTED,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
    outbound_traffic_policy: OutboundTrafficPolicy | str = OutboundTrafficPolicy.ALLOW_ANY,
) -> list[Finding]:
    """All findings for that Istio release (and the mesh's outbound traffic policy), errors first,
    then by code and resource. Where the manifests show sidecars and nothing of ambient, the
    ServiceEntry checks that ask for a waypoint are left out."""
    index = as_index(mesh)
    istio = Istio.of(istio_version, root_namespace, outbound_traffic_policy)
    waypoint_checks = (_waypoint_bindings, _unreachable_upstreams, _service_entries_without_allow_policy, _duplicate_hosts)
    checks = (
        *(() if sidecar_only(index) else waypoint_checks),
        _database_namespaces_in_mesh,
        _waypoint_namespaces,
        _bypasses,
        _dns_hosts,
        _shadows,
        _opted_out_workloads,
    )
    found = [
        *policy_findings(index, istio),
        *tls_findings(index),
        *sidecar_findings(index, istio),
        *(finding for check in checks for finding in check(index, istio)),
    ]
    return sorted(found, key=Finding.sort_key)


def _waypoint_bindings(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        binding = waypoint_binding(index, service_entry, istio)
        if binding.problem is None:
            continue
        # One fix is to move the ServiceEntry beside the waypoint, where `Same`, the default, admits it.
        waypoint_namespace = binding.waypoint.namespace if binding.waypoint else service_entry.namespace
        code, fix = {
            Problem.NO_WAYPOINT: (
                Code.SERVICE_ENTRY_NOT_BOUND,
                f"so its traffic skips the waypoint and is open to every namespace; label it "
                f"{USE_WAYPOINT}=<waypoint> (and {USE_WAYPOINT_NAMESPACE} if the waypoint is elsewhere)",
            ),
            Problem.WAYPOINT_NOT_FOUND: (
                Code.WAYPOINT_NOT_FOUND,
                f"so nothing enforces policy; create the waypoint or fix the {USE_WAYPOINT} labels",
            ),
            Problem.ATTACHMENT_DENIED: (
                Code.WAYPOINT_ATTACHMENT_DENIED,
                f"so its traffic skips the waypoint and is open to every namespace; on the waypoint's HBONE "
                f"listener set allowedRoutes.namespaces.from: All, or from: Selector with a selector matching "
                f"namespace {service_entry.namespace}, or move the ServiceEntry to namespace {waypoint_namespace}",
            ),
            Problem.NOT_FOR_SERVICES: (
                Code.WAYPOINT_NOT_FOR_SERVICES,
                f"so its traffic skips the waypoint and is open to every namespace; label the waypoint Gateway "
                f"{WAYPOINT_FOR}=service (or all), or bind the ServiceEntry to a waypoint for services",
            ),
            Problem.DROPPED_FROM_AMBIENT: (
                Code.DROPPED_FROM_AMBIENT,
                "so its traffic is open to every namespace; list single IPs in spec.addresses, or analyse for "
                f"(and run) Istio {Behaviour.CIDR_ADDRESSES.since} or later",
            ),
            Problem.NOT_CAPTURED: (
                Code.NO_ADDRESS_TO_CAPTURE,
                "so it is open to every namespace; list the destination's IPs in spec.addresses",
            ),
            Problem.ADMISSION_UNKNOWN: (
                Code.BINDING_NOT_EVALUATED,
                f"so cells for it read UNDECIDED; add namespace {service_entry.namespace}'s Namespace manifest, "
                "with its labels, to the analysed files",
            ),
        }[binding.problem]
        yield report(code, service_entry, f"{binding}, {fix}")


def _unreachable_upstreams(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    if istio.has(Behaviour.RESOLUTION_NONE_PASSTHROUGH):
        return
    for service_entry in index.all(SERVICE_ENTRY):
        if service_entry.spec.get("resolution") == "NONE" and waypoint_binding(index, service_entry, istio).enforced:
            yield report(
                Code.NO_UPSTREAM_AT_WAYPOINT,
                service_entry,
                f"Has resolution NONE and is bound to a waypoint, which on Istio {istio.version} has no endpoint for "
                f"it, so every connection fails; use resolution DNS or STATIC with endpoints, or Istio "
                f"{Behaviour.RESOLUTION_NONE_PASSTHROUGH.since} or later",
            )


def _service_entries_without_allow_policy(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        policies = applicable_policies(index, service_entry, waypoint_binding(index, service_entry, istio), istio)
        if not any(policy.action == "ALLOW" and not policy.dry_run for policy in policies):
            yield report(
                Code.SERVICE_ENTRY_WITHOUT_ALLOW_POLICY,
                service_entry,
                "No ALLOW AuthorizationPolicy applies, so it is open to every ambient namespace; add an "
                f"ALLOW policy without rules (allow-nothing) targeting it in namespace {service_entry.namespace}",
            )


def _duplicate_hosts(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    declared_by: dict[str, list[Resource]] = defaultdict(list)
    for service_entry in index.all(SERVICE_ENTRY):
        for host in service_entry_hosts(service_entry):
            declared_by[host].append(service_entry)
    for host, service_entries in declared_by.items():
        if len(service_entries) < 2:
            continue
        for service_entry in service_entries:
            others = ", ".join(str(other.ref) for other in service_entries if other is not service_entry)
            yield report(
                Code.DUPLICATE_HOST,
                service_entry,
                f'Host "{host}" is also declared by ServiceEntry {others}; ambient ignores exportTo, so they '
                "conflict; declare each host in exactly one ServiceEntry",
            )


def _database_namespaces_in_mesh(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    """Namespaces in the mesh holding what a ServiceEntry's destination really is (see `backends`)."""
    behind: dict[str, list[str]] = defaultdict(list)
    for service_entry in index.all(SERVICE_ENTRY):
        for backend in backends(index, service_entry):
            behind[backend.namespace].append(f"{backend} behind ServiceEntry {service_entry.ref}")
    for namespace, listed in sorted(behind.items()):
        if enrollment(index, namespace) is Enrollment.AMBIENT:
            yield report(
                Code.DATABASE_NAMESPACE_IN_MESH,
                f"{NAMESPACE.kind} {namespace}",
                f"Holds the destinations of ServiceEntries ({', '.join(listed)}) but is labelled "
                f"{DATAPLANE_MODE}=ambient; they stand in for services outside the mesh, so clients would reach "
                "them without the egress waypoint; remove the label",
            )


def _waypoint_namespaces(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    for gateway in filter(is_waypoint, index.all(GATEWAY)):
        state = enrollment(index, gateway.namespace)
        if state is not Enrollment.AMBIENT:
            yield report(
                Code.WAYPOINT_NAMESPACE_NOT_AMBIENT,
                gateway,
                f"Waypoint namespace {gateway.namespace} {state.value}; label it {DATAPLANE_MODE}=ambient",
            )


def _bypasses(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    """One finding per open route, naming every client namespace it is open to."""
    namespaces = client_namespaces(index)
    open_to: dict[Bypass, set[str]] = defaultdict(set)
    for service_entry in index.all(SERVICE_ENTRY):
        if not namespace_routes_possible(index, service_entry, istio):
            continue
        for namespace in namespaces:
            for route in bypasses(index, namespace, service_entry, istio):
                # A shadow ServiceEntry is reported on its own (EGW0210).
                if route.route in (RAW_IP, IN_CLUSTER):
                    open_to[route].add(namespace)
    for route, clients in sorted(open_to.items()):
        listed = ", ".join(sorted(clients))
        if route.route == RAW_IP:
            yield report(
                Code.RAW_IP_BYPASS,
                f"{SERVICE_ENTRY.kind} {route.resource}",
                f"Raw-IP connections to {route.detail} bypass the waypoint (from {listed}): add "
                f'spec.addresses: ["{route.detail}"] or an egress NetworkPolicy in each client namespace',
            )
        else:
            admits = "accept connections from namespaces other than the egress waypoint's"
            fix = (
                "add an ingress NetworkPolicy admitting only the waypoint pods, and let no other policy selecting "
                "them admit more"
            )
            if route.kind == SERVICE_ENTRY:
                message = f"The pods its workloadSelector selects {admits} ({listed}): {fix}"
                yield report(Code.SELECTED_PODS_ADMIT_CLIENTS, f"{route.kind.kind} {route.resource}", message)
            else:
                message = f"Database pods {admits} ({listed}): {fix}"
                yield report(Code.DATABASE_ADMITS_CLIENTS, f"{route.kind.kind} {route.resource}", message)


def _dns_hosts(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    """A DNS host's real IPs are any other external destination: reported for the ambient client
    namespaces whose egress reaches those (see `egress`)."""
    reaching = [
        namespace
        for namespace in client_namespaces(index)
        if enrollment(index, namespace) is Enrollment.AMBIENT
        and external_egress(index, namespace).decision is not Decision.DENY
    ]
    if not reaching:
        return
    listed = ", ".join(reaching)
    for service_entry in index.all(SERVICE_ENTRY):
        for host in unpinnable_hosts(index, service_entry, istio):
            yield report(
                Code.DNS_HOST_UNPINNED,
                service_entry,
                f'Host "{host}" is a DNS name, so the IPs it resolves to cannot be pinned, and pods of {listed} may '
                "connect to them directly, around the waypoint (their egress reaches any external address); lock "
                "their egress down to in-cluster pods with an egress NetworkPolicy, or list the IPs in spec.addresses "
                "if they are fixed",
            )


def _shadows(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    clients = [ns for ns in client_namespaces(index) if enrollment(index, ns) is Enrollment.AMBIENT]
    admission = service_entry_admission(index)
    for shadow in all_shadows(index, istio):
        own = shadow.service_entry.namespace
        if shadow.captures_own_namespace:
            captured = f"clients in its own namespace {own} (ztunnel prefers the client's namespace)"
            others = [namespace for namespace in clients if namespace != own]
        else:
            captured = (
                f"no client for certain: on Istio {istio.version} the ServiceEntry written last wins an address, "
                f"mesh-wide ({Behaviour.LOCAL_ADDRESS_PREFERENCE.since} prefers the client's namespace)"
            )
            others = clients
        maybe = (
            f", and may get those of {', '.join(others)} (the tie turns on an order the manifests do not show)"
            if others
            else ""
        )
        where = (
            "bound to no waypoint, so they go straight out"
            if shadow.goes_straight_out
            else "not bound to that waypoint, so its policies do not apply"
        )
        refused = ""
        if admission is not None and own not in admission.namespaces:
            allowed = ", ".join(sorted(admission.namespaces))
            refused = (
                f"; ValidatingAdmissionPolicy {admission.policy.name} refuses new ServiceEntries outside {allowed}, "
                "which keeps further ones out but not this one"
            )
        yield report(
            Code.SHADOW_SERVICE_ENTRY,
            shadow.service_entry,
            f"Claims {_claims(shadow)} of ServiceEntry {shadow.target}, which waypoint {shadow.waypoint} serves: ztunnel "
            f"gives it the connections of {captured}{maybe}; it is {where}; delete it{refused}",
        )


def _claims(shadow: Shadow) -> str:
    hosts = [f'host "{host}"' for host in shadow.hosts]
    return ", ".join([*hosts, *(f"address {address}" for address in shadow.addresses)])


def _opted_out_workloads(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    served = [entry for entry in index.all(SERVICE_ENTRY) if waypoint_binding(index, entry, istio).enforced]
    for namespace in index.all(NAMESPACE):
        for workload, opt_out, written in opted_out(index, namespace.name, istio):
            reached = [str(entry.ref) for entry in served if reaches_directly(index, workload, opt_out, entry)]
            if not reached:
                continue
            shown = name_list(reached)
            fix = (
                "run it outside the host network"
                if workload.host_network
                else f"remove {written}, or lock namespace {namespace.name}'s egress down to in-cluster pods with an "
                "egress NetworkPolicy"
            )
            yield report(
                Code.WORKLOAD_OPTS_OUT,
                namespace,
                f"The pods of {workload} {opt_out.value} ({written}), and their egress lets them reach the destinations "
                f"of {len(reached)} ServiceEntr{'y' if len(reached) == 1 else 'ies'} directly, around the waypoint "
                f"({shown}): {fix}",
            )

