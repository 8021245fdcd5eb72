"""The waypoint's rules for connections to one ServiceEntry port, and its verdict on one connection or HTTP request.

How the waypoint decides (Envoy's RBAC filters as istiod builds them, `authz/builder/builder.go`):
CUSTOM policies first, then DENY, then ALLOW; with no ALLOW policy, what no DENY policy stops
passes. AUDIT policies only log. The analysis keeps what it cannot settle apart from what it can:
a verdict is ALLOW or DENY only when nothing it did not evaluate could change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .attachment import applicable_policies
from .binding import waypoint_binding
from .istio import Behaviour, Istio
from .manifests import MeshIndex, ObjectRef, Resource
from .mesh import Enrollment, enrollment, is_http_protocol, service_entry_hosts, service_entry_ports
from .policy import Facts, Policy
from .truth import Match, Truth
from .verdict import Decision, Verdict


def client_outside_ambient(index: MeshIndex, namespace: str) -> Verdict | None:
    """The verdict for every connection from `namespace` when ztunnel does not capture it, else None."""
    client = enrollment(index, namespace)
    if client is Enrollment.UNKNOWN:
        # Whether ztunnel captures the client at all turns on labels the manifests do not show.
        return Verdict(Decision.UNDECIDED, f"client namespace {namespace} {client.value}, so whether it is ambient is unknown")
    if client is not Enrollment.AMBIENT:
        return Verdict(Decision.OPEN, f"client namespace {namespace} {client.value}")
    return None


@dataclass(frozen=True)
class PortRules:
    """What decides an ambient client's connections to one ServiceEntry port: a verdict that holds
    for every client (`fixed`), or the policies the waypoint applies, judged per client by `decide`."""

    service_entry: ObjectRef
    host: str  # what a client dialling the ServiceEntry sends: its first host
    fixed: Verdict | None
    policies: tuple[Policy, ...] = ()
    http: bool = False
    # Why every connection fails whatever the policies say, if it does.
    unreachable: str | None = None

    def decide(self, facts: Facts, istio: Istio) -> Verdict:
        return self.decide_matched([policy.evaluate(facts, istio, http=self.http) for policy in self.policies])

    def decide_matched(self, matches: Sequence[Match]) -> Verdict:
        """The verdict given how each of `policies` matches the connection, in their order."""
        if self.fixed is not None:
            return self.fixed
        verdict = _with_dry_run(list(zip(self.policies, matches, strict=True)), destination=self.service_entry)
        if self.unreachable is not None:
            return Verdict(Decision.DENY, f"{self.unreachable}; policies: {verdict.decision}, {verdict.reason}")
        return verdict


def port_rules(
    index: MeshIndex, service_entry: Resource, port: int, istio: Istio, *, protocol: str | None = None
) -> PortRules:
    """The rules for connections to `port` of the ServiceEntry, worked out once per index; `protocol`
    overrides the one the ServiceEntry declares for the port."""
    key = ("port rules", service_entry.ref, port, protocol, istio)
    return index.derived(key, lambda: _port_rules(index, service_entry, port, istio, protocol))


def _port_rules(index: MeshIndex, service_entry: Resource, number: int, istio: Istio, protocol: str | None) -> PortRules:
    host = next(iter(service_entry_hosts(service_entry)), "")

    def fixed(verdict: Verdict) -> PortRules:
        return PortRules(service_entry.ref, host, verdict)

    binding = waypoint_binding(index, service_entry, istio)
    if binding.undecided:
        return fixed(Verdict(Decision.UNDECIDED, str(binding)))
    if not binding.enforced:
        return fixed(Verdict(Decision.OPEN, str(binding)))
    ports = service_entry_ports(service_entry)
    port = next((port for port in ports if port.number == number), None)
    if port is None:
        # ztunnel sends everything addressed to the ServiceEntry to the waypoint, on any port; the
        # waypoint listens only on the declared ones.
        declared = ", ".join(str(declared.number) for declared in ports) or "none"
        return fixed(
            Verdict(
                Decision.DENY,
                f"ServiceEntry {service_entry.ref} does not declare port {number} (ports: {declared}), so the "
                "waypoint has no listener for it and drops the connection",
            )
        )
    unreachable = None
    if service_entry.spec.get("resolution") == "NONE" and not istio.has(Behaviour.RESOLUTION_NONE_PASSTHROUGH):
        unreachable = (
            f"the waypoint has no endpoint for a resolution: NONE ServiceEntry on Istio {istio.version}, so every "
            f"connection fails (no healthy upstream; {Behaviour.RESOLUTION_NONE_PASSTHROUGH.since} passes it through)"
        )
    return PortRules(
        service_entry.ref,
        host,
        None,
        applicable_policies(index, service_entry, binding, istio),
        is_http_protocol(protocol) if protocol else port.http,
        unreachable,
    )


Matched = list[tuple[Policy, Match]]


def _with_dry_run(matched: Matched, *, destination: ObjectRef) -> Verdict:
    """The verdict of the enforced policies; where the dry-run ones would change it, the reason says how."""
    enforced = [(policy, match) for policy, match in matched if not policy.dry_run]
    verdict = _decide(enforced, destination=destination)
    if len(enforced) == len(matched):
        return verdict
    logged = _decide(matched, destination=destination)
    if logged.decision is verdict.decision:
        return verdict
    dry_run = f"with its dry-run policies enforced: {logged.decision} ({logged.reason})"
    return replace(verdict, reason=f"{verdict.reason}; {dry_run}")


def _decide(matched: Matched, *, destination: ObjectRef) -> Verdict:
    def by(action: str, *truths: Truth) -> Matched:
        return [(p, m) for p, m in matched if p.action == action and m.truth in truths]

    denied = by("DENY", Truth.YES)
    if denied:
        return Verdict(Decision.DENY, f"denied by {denied[0][0].ref}")
    allows = [policy for policy, _ in matched if policy.action == "ALLOW"]
    if allows and not by("ALLOW", Truth.YES, Truth.DEPENDS, Truth.UNKNOWN):
        listed = ", ".join(str(policy.ref) for policy in allows)
        return Verdict(Decision.DENY, f"no ALLOW policy matched (applicable: {listed})")
    # A CUSTOM policy that may match hands the request to an external authorizer, which may deny it.
    may_deny = by("DENY", Truth.UNKNOWN) + by("CUSTOM", Truth.YES, Truth.DEPENDS, Truth.UNKNOWN)
    if may_deny:
        return Verdict(Decision.UNDECIDED, _cannot_decide(may_deny))
    denied_sometimes = by("DENY", Truth.DEPENDS)
    except_denied = "".join(f", except requests matching {_fields(m)} of {p.ref}" for p, m in denied_sometimes)
    if not allows:
        if denied_sometimes:
            return Verdict(Decision.LIMITED, f"no ALLOW policy applies{except_denied}")
        return Verdict(Decision.OPEN, f"no ALLOW policy applies to ServiceEntry {destination}")
    allowed = by("ALLOW", Truth.YES)
    if allowed:
        decision = Decision.LIMITED if denied_sometimes else Decision.ALLOW
        return Verdict(decision, f"allowed by {allowed[0][0].ref}{except_denied}")
    undecided = by("ALLOW", Truth.UNKNOWN)
    if undecided:
        return Verdict(Decision.UNDECIDED, _cannot_decide(undecided))
    allowed_sometimes = "; ".join(f"{p.ref} allows those matching {_fields(m)}" for p, m in by("ALLOW", Truth.DEPENDS))
    return Verdict(Decision.LIMITED, f"only some requests: {allowed_sometimes}{except_denied}")


def _fields(match: Match) -> str:
    return ", ".join(sorted(match.on))


def _cannot_decide(matches: Matched) -> str:
    turns_on = "; ".join(
        f"CUSTOM policy {policy.ref} may send it to an external authorizer"
        if policy.action == "CUSTOM"
        else f"{policy.ref} turns on {_fields(match)}"
        for policy, match in matches
    )
    return f"cannot decide: {turns_on}"
