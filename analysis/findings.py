"""`istioctl analyze`-style checks of an egress configuration, each finding saying how to fix it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from .bypass import RAW_IP, Bypass, bypasses, is_database, unpinnable_hosts
from .catalogue import Code, Severity
from .manifests import (
    AUTHORIZATION_POLICY,
    DEPLOYMENT,
    GATEWAY,
    NAMESPACE,
    SERVICE,
    SERVICE_ENTRY,
    STATEFUL_SET,
    Mesh,
    MeshIndex,
    ObjectRef,
    Resource,
    as_index,
)
from .matrix import client_namespaces
from .mesh import (
    DATAPLANE_MODE,
    USE_WAYPOINT,
    USE_WAYPOINT_NAMESPACE,
    Enrollment,
    applicable_policies,
    enrollment,
    is_waypoint,
    service_entry_hosts,
    service_entry_ports,
    waypoint_binding,
)
from .policy import Policy, TargetRef, parse_policy


@dataclass(frozen=True)
class Finding:
    code: Code
    resource: str  # "Kind namespace/name"
    message: str
    severity: Severity = field(init=False)  # the code's, from the catalogue

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", self.code.severity)

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] ({self.resource}) {self.message}"

    def sort_key(self) -> tuple[int, str, str, str]:
        return self.severity.rank, self.code, self.resource, self.message


def _finding(code: Code, resource: Resource | str, message: str) -> Finding:
    """`resource` is the object, or its `Kind namespace/name` label when only its address is at hand."""
    return Finding(code, str(resource), message)


def analyze(mesh: Mesh) -> list[Finding]:
    """All findings, errors first, then by code and resource."""
    index = as_index(mesh)
    checks = (
        _policy_targets,
        _http_only_rules,
        _unexposed_policy_ports,
        _source_namespaces,
        _waypoint_bindings,
        _service_entries_without_allow_policy,
        _duplicate_hosts,
        _database_namespaces_in_mesh,
        _waypoint_namespaces,
        _bypasses,
        _dns_hosts,
    )
    return sorted((finding for check in checks for finding in check(index)), key=Finding.sort_key)


def _policies(index: MeshIndex) -> Iterator[tuple[Resource, Policy]]:
    for resource in index.all(AUTHORIZATION_POLICY):
        yield resource, parse_policy(resource)


def _service_entry_targets(index: MeshIndex) -> Iterator[tuple[Resource, Policy, TargetRef, Resource | None]]:
    """(policy resource, policy, targetRef, the ServiceEntry it resolves to) for each ServiceEntry targetRef."""
    for resource, policy in _policies(index):
        for target in policy.targets:
            if target.kind == SERVICE_ENTRY:
                yield resource, policy, target, index.get(SERVICE_ENTRY, ObjectRef(resource.namespace, target.name))


def _targeted_service_entries(index: MeshIndex) -> Iterator[tuple[Resource, Policy, Resource]]:
    for resource, policy, _, service_entry in _service_entry_targets(index):
        if service_entry is not None:
            yield resource, policy, service_entry


def _policy_targets(index: MeshIndex) -> Iterator[Finding]:
    for resource, _, target, service_entry in _service_entry_targets(index):
        if service_entry is not None:
            continue
        elsewhere = ", ".join(se.namespace for se in index.named(SERVICE_ENTRY, target.name))
        if elsewhere:
            yield _finding(
                Code.POLICY_TARGET_IN_OTHER_NAMESPACE,
                resource,
                f'Referenced ServiceEntry "{target.name}" exists only in namespace {elsewhere}: targetRefs '
                "cannot cross namespaces, so the policy does not apply; move it to the ServiceEntry's namespace",
            )
        else:
            yield _finding(
                Code.POLICY_TARGET_NOT_FOUND,
                resource,
                f'Referenced ServiceEntry not found: "{target.name}"; create it in namespace '
                f"{resource.namespace} or fix spec.targetRefs",
            )


def _http_only_rules(index: MeshIndex) -> Iterator[Finding]:
    for resource, policy, service_entry in _targeted_service_entries(index):
        for position, rule in enumerate(policy.rules):
            fields = ", ".join(rule.http_only_fields())
            ports = service_entry_ports(service_entry)
            tcp_ports = ", ".join(str(p.number) for p in ports if not p.http and rule.may_match_port(p.number))
            if not fields or not tcp_ports:
                continue
            where = f"rules[{position}] uses HTTP-only fields ({fields}) on TCP port {tcp_ports} of {service_entry}"
            if policy.action == "ALLOW":
                yield _finding(
                    Code.ALLOW_RULE_NEVER_MATCHES_TCP,
                    resource,
                    f"{where}, so the rule never matches and allows nothing; "
                    "limit TCP rules to ports, namespaces and principals",
                )
            elif policy.action == "DENY":
                yield _finding(
                    Code.DENY_RULE_BROADENED_ON_TCP,
                    resource,
                    f"{where}; Istio drops those fields, so the rule denies more than written; "
                    "remove them or narrow the rule with ports, namespaces or principals",
                )


def _unexposed_policy_ports(index: MeshIndex) -> Iterator[Finding]:
    for resource, policy, service_entry in _targeted_service_entries(index):
        exposed = [str(port.number) for port in service_entry_ports(service_entry)]
        named = {value for rule in policy.rules for c in rule.clauses() if c.field == "ports" for value in c.values}
        for port in sorted(named - set(exposed)):
            yield _finding(
                Code.POLICY_PORT_NOT_EXPOSED,
                resource,
                f'Port "{port}" is not exposed by {service_entry} (ports: {", ".join(exposed) or "none"}), '
                "so rules on it never match; use one of its port numbers",
            )


def _source_namespaces(index: MeshIndex) -> Iterator[Finding]:
    for resource, policy in _policies(index):
        for namespace in sorted(policy.source_namespaces()):
            state = enrollment(index, namespace)
            if state is Enrollment.NOT_ENROLLED:
                yield _finding(
                    Code.SOURCE_NAMESPACE_NOT_AMBIENT,
                    resource,
                    f'Source namespace "{namespace}" {state.value}, so its traffic bypasses the waypoint and this '
                    f"policy; label it {DATAPLANE_MODE}=ambient",
                )
            elif state is Enrollment.UNKNOWN:
                yield _finding(
                    Code.SOURCE_NAMESPACE_NOT_FOUND,
                    resource,
                    f'Source namespace "{namespace}" {state.value}; add one labelled {DATAPLANE_MODE}=ambient '
                    "or fix the policy's source",
                )


def _waypoint_bindings(index: MeshIndex) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        binding = waypoint_binding(index, service_entry)
        if binding.waypoint is None:
            yield _finding(
                Code.SERVICE_ENTRY_NOT_BOUND,
                service_entry,
                f"{binding}, so its traffic skips the waypoint and is open to every namespace; label it "
                f"{USE_WAYPOINT}=<waypoint> (and {USE_WAYPOINT_NAMESPACE} if the waypoint is elsewhere)",
            )
        elif not binding.enforced:
            yield _finding(
                Code.WAYPOINT_NOT_FOUND,
                service_entry,
                f"{binding}, so nothing enforces policy; create the waypoint or fix the {USE_WAYPOINT} labels",
            )


def _service_entries_without_allow_policy(index: MeshIndex) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        policies = applicable_policies(index, service_entry, waypoint_binding(index, service_entry))
        if not any(policy.action == "ALLOW" for policy in policies):
            yield _finding(
                Code.SERVICE_ENTRY_WITHOUT_ALLOW_POLICY,
                service_entry,
                "No ALLOW AuthorizationPolicy applies, so it is open to every ambient namespace; add an "
                f"ALLOW policy without rules (allow-nothing) targeting it in namespace {service_entry.namespace}",
            )


def _duplicate_hosts(index: MeshIndex) -> Iterator[Finding]:
    declared_by: dict[str, list[Resource]] = defaultdict(list)
    for service_entry in index.all(SERVICE_ENTRY):
        for host in service_entry_hosts(service_entry):
            declared_by[host].append(service_entry)
    for host, service_entries in declared_by.items():
        if len(service_entries) < 2:
            continue
        for service_entry in service_entries:
            others = ", ".join(str(other.ref) for other in service_entries if other is not service_entry)
            yield _finding(
                Code.DUPLICATE_HOST,
                service_entry,
                f'Host "{host}" is also declared by ServiceEntry {others}; ambient ignores exportTo, so they '
                "conflict; declare each host in exactly one ServiceEntry",
            )


def _database_namespaces_in_mesh(index: MeshIndex) -> Iterator[Finding]:
    databases: dict[str, list[Resource]] = defaultdict(list)
    for kind in (DEPLOYMENT, STATEFUL_SET, SERVICE):
        for workload in index.all(kind):
            if is_database(workload):
                databases[workload.namespace].append(workload)
    for namespace, workloads in sorted(databases.items()):
        if enrollment(index, namespace) is Enrollment.AMBIENT:
            yield _finding(
                Code.DATABASE_NAMESPACE_IN_MESH,
                f"{NAMESPACE.kind} {namespace}",
                f"Holds databases ({', '.join(str(w) for w in workloads)}) but is labelled {DATAPLANE_MODE}=ambient; "
                "they stand in for databases outside the mesh, so clients would reach them without the egress "
                "waypoint; remove the label",
            )


def _waypoint_namespaces(index: MeshIndex) -> Iterator[Finding]:
    for gateway in filter(is_waypoint, index.all(GATEWAY)):
        state = enrollment(index, gateway.namespace)
        if state is not Enrollment.AMBIENT:
            yield _finding(
                Code.WAYPOINT_NAMESPACE_NOT_AMBIENT,
                gateway,
                f"Waypoint namespace {gateway.namespace} {state.value}; label it {DATAPLANE_MODE}=ambient",
            )


def _bypasses(index: MeshIndex) -> Iterator[Finding]:
    """One finding per open route, naming every client namespace it is open to."""
    namespaces = client_namespaces(index)
    open_to: dict[Bypass, set[str]] = defaultdict(set)
    for service_entry in index.all(SERVICE_ENTRY):
        for namespace in namespaces:
            for route in bypasses(index, namespace, service_entry):
                open_to[route].add(namespace)
    for route, clients in sorted(open_to.items()):
        listed = ", ".join(sorted(clients))
        if route.route == RAW_IP:
            yield _finding(
                Code.RAW_IP_BYPASS,
                f"{SERVICE_ENTRY.kind} {route.resource}",
                f"Raw-IP connections to {route.ip} bypass the waypoint (from {listed}): add "
                f'spec.addresses: ["{route.ip}"] or an egress NetworkPolicy in each client namespace',
            )
        else:
            yield _finding(
                Code.DATABASE_ADMITS_CLIENTS,
                f"{SERVICE.kind} {route.resource}",
                f"Database pods accept connections from namespaces other than the egress waypoint's ({listed}): "
                "add an ingress NetworkPolicy admitting only the waypoint pods, and let no other policy "
                "selecting them admit more",
            )


def _dns_hosts(index: MeshIndex) -> Iterator[Finding]:
    for service_entry in index.all(SERVICE_ENTRY):
        for host in unpinnable_hosts(index, service_entry):
            yield _finding(
                Code.DNS_HOST_UNPINNED,
                service_entry,
                f'Host "{host}" is a DNS name, so the IPs it resolves to cannot be pinned and direct connections '
                "to them bypass the waypoint; deny them with an egress NetworkPolicy in each client namespace, "
                "or list them in spec.addresses if they are fixed",
            )
