"""The verdict for one connection from a client to a ServiceEntry port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .manifests import SERVICE_ENTRY, Mesh, ObjectRef, as_index
from .mesh import (
    Enrollment,
    ServicePort,
    applicable_policies,
    enrollment,
    is_http_protocol,
    service_entry_ports,
    waypoint_binding,
)
from .policy import (
    DEFAULT_TRUST_DOMAIN,
    DESTINATION_PORT,
    REQUEST_METHOD,
    REQUEST_PATH,
    SOURCE_NAMESPACE,
    SOURCE_PRINCIPAL,
    Attributes,
    Policy,
    Principal,
)


@dataclass(frozen=True)
class Request:
    source_namespace: str
    destination: ObjectRef  # the ServiceEntry
    port: int  # the ServiceEntry port the client dials
    # Without a service account the client's principal is unknown, so rules on principals cannot match.
    service_account: str | None = None
    # None: the protocol the ServiceEntry declares for the port, which is what the waypoint uses.
    protocol: str | None = None
    # Only seen on HTTP ports.
    method: str | None = None
    path: str | None = None
    trust_domain: str = DEFAULT_TRUST_DOMAIN

    @property
    def principal(self) -> str | None:
        if self.service_account is None:
            return None
        return str(Principal(self.trust_domain, self.source_namespace, self.service_account))


class Decision(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    OPEN = "OPEN"  # reachable because nothing enforces a policy on the path
    BYPASS = "BYPASS"  # the waypoint denies, but a route around it reaches the database


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    # Routes around the waypoint that stay open, e.g. `raw IP 203.0.113.10`; `evaluate` judges only
    # the waypoint, so the access matrix fills this in.
    bypasses: tuple[str, ...] = ()


def evaluate(mesh: Mesh, request: Request) -> Verdict:
    """Raises LookupError when the destination ServiceEntry is not in the manifests."""
    index = as_index(mesh)
    service_entry = index.get(SERVICE_ENTRY, request.destination)
    if service_entry is None:
        raise LookupError(f"ServiceEntry {request.destination} not found")

    client = enrollment(index, request.source_namespace)
    if client is not Enrollment.AMBIENT:
        return Verdict(Decision.OPEN, f"client namespace {request.source_namespace} {client.value}")
    binding = waypoint_binding(index, service_entry)
    if not binding.enforced:
        return Verdict(Decision.OPEN, str(binding))
    port = next((port for port in service_entry_ports(service_entry) if port.number == request.port), None)
    if port is None:
        undeclared = f"ServiceEntry {service_entry.ref} does not declare port {request.port}"
        return Verdict(Decision.OPEN, f"{undeclared}, so the connection bypasses the waypoint")
    return _decide(applicable_policies(index, service_entry, binding), request, port)


def _decide(policies: tuple[Policy, ...], request: Request, port: ServicePort) -> Verdict:
    http = is_http_protocol(request.protocol) if request.protocol else port.http
    attributes = _attributes(request)
    # AUDIT policies only log, and CUSTOM ones defer to an external authorizer the manifests cannot
    # show, so neither takes part in the verdict.
    for policy in policies:
        if policy.action == "DENY" and policy.matches(attributes, http=http):
            return Verdict(Decision.DENY, f"denied by {policy.ref}")
    allows = [policy for policy in policies if policy.action == "ALLOW"]
    if not allows:
        return Verdict(Decision.OPEN, f"no ALLOW policy applies to ServiceEntry {request.destination}")
    for policy in allows:
        if policy.matches(attributes, http=http):
            return Verdict(Decision.ALLOW, f"allowed by {policy.ref}")
    return Verdict(Decision.DENY, f"no ALLOW policy matched (applicable: {', '.join(str(p.ref) for p in allows)})")


def _attributes(request: Request) -> Attributes:
    optional = {SOURCE_PRINCIPAL: request.principal, REQUEST_METHOD: request.method, REQUEST_PATH: request.path}
    return {
        SOURCE_NAMESPACE: request.source_namespace,
        DESTINATION_PORT: str(request.port),
        **{attribute: value for attribute, value in optional.items() if value is not None},
    }
