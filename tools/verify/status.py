"""What the mesh reports before a byte is sent: the waypoint Programmed with an address, every
ServiceEntry bound to it (`istio.io/WaypointBound`) and serving the hosts the source expects, and
every AuthorizationPolicy of the project accepted by the waypoint (`WaypointAccepted`).

A condition that is false fails, naming its reason and message; one not reported yet is an ERROR,
since nothing is known either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .checks import Result
from .expectations import Expectations, Target
from .kubectl import PART_OF_SELECTOR, Kubectl

GATEWAY_RESOURCE = "gateways.gateway.networking.k8s.io"
SERVICE_ENTRY_RESOURCE = "serviceentries.networking.istio.io"
POLICY_RESOURCE = "authorizationpolicies.security.istio.io"
WAYPOINT_CLASS = "istio-waypoint"
BOUND = "istio.io/WaypointBound"
# istiod reports a policy with some bad targetRefs as accepted with this reason (istioctl IST0171).
PARTIALLY_INVALID = "PartiallyInvalid"


@dataclass(frozen=True)
class StatusResult:
    object: str
    """`Kind namespace/name`."""
    condition: str
    result: Result
    detail: str


def check_status(kubectl: Kubectl, expectations: Expectations) -> list[StatusResult]:
    return [*_waypoints(kubectl, expectations), *_service_entries(kubectl, expectations), *_policies(kubectl, expectations)]


def _condition(document: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    conditions = document.get("status", {}).get("conditions") or []
    return next((condition for condition in conditions if condition.get("type") == kind), None)


def _name(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata", {})
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _false(condition: Mapping[str, Any]) -> str:
    return f"{condition.get('type')}={condition.get('status')} ({condition.get('reason', 'no reason')}: " \
           f"{condition.get('message', 'no message')})"


def _waypoints(kubectl: Kubectl, expectations: Expectations) -> Iterator[StatusResult]:
    if expectations.waypoint is not None:
        namespace, _, name = expectations.waypoint.partition("/")
        read = kubectl.get(GATEWAY_RESOURCE, name, namespace=namespace)
        where = f"Gateway {expectations.waypoint}"
        if read.document is None:
            yield StatusResult(where, "Programmed", Result.FAIL if read.not_found else Result.ERROR,
                               f"{read.problem}: pulumi up creates it" if read.not_found else str(read.problem))
            return
        gateways = [read.document]
    else:
        read = kubectl.get(GATEWAY_RESOURCE, namespace=expectations.egress_namespace, selector=PART_OF_SELECTOR)
        where = f"Gateway {expectations.egress_namespace}/*"
        if read.document is None:
            yield StatusResult(where, "Programmed", Result.ERROR, str(read.problem))
            return
        items = read.document.get("items", [])
        gateways = [item for item in items if item.get("spec", {}).get("gatewayClassName") == WAYPOINT_CLASS]
        if not gateways:
            yield StatusResult(where, "Programmed", Result.FAIL, f"no waypoint (class {WAYPOINT_CLASS}) of the project in "
                                                                 f"{expectations.egress_namespace}: pulumi up creates it")
            return
    for gateway in gateways:
        yield _programmed(gateway)


def _programmed(gateway: Mapping[str, Any]) -> StatusResult:
    where = f"Gateway {_name(gateway)}"
    condition = _condition(gateway, "Programmed")
    if condition is None:
        return StatusResult(where, "Programmed", Result.ERROR, "no Programmed condition reported yet: is istiod running?")
    if condition.get("status") != "True":
        return StatusResult(where, "Programmed", Result.FAIL, _false(condition))
    addresses = [entry.get("value") for entry in gateway.get("status", {}).get("addresses") or [] if entry.get("value")]
    if not addresses:
        return StatusResult(where, "Programmed", Result.FAIL, "Programmed but no status.addresses: istiod binds no "
                                                              "ServiceEntry to a waypoint without one")
    return StatusResult(where, "Programmed", Result.PASS, f"Programmed, address {addresses[0]}")


def _service_entries(kubectl: Kubectl, expectations: Expectations) -> Iterator[StatusResult]:
    by_namespace: dict[str, list[Target]] = {}
    for target in expectations.targets:
        by_namespace.setdefault(target.namespace, []).append(target)
    for namespace, targets in by_namespace.items():
        read = kubectl.get(SERVICE_ENTRY_RESOURCE, namespace=namespace)
        if read.document is None:
            yield StatusResult(f"ServiceEntry {namespace}/*", BOUND, Result.ERROR, str(read.problem))
            continue
        live = {_name(item): item for item in read.document.get("items", [])}
        for target in targets:
            yield _bound(target, live.get(target.service_entry), expectations.source)


def _bound(target: Target, service_entry: Mapping[str, Any] | None, source: str) -> StatusResult:
    where = f"ServiceEntry {target.service_entry}"
    if service_entry is None:
        return StatusResult(where, BOUND, Result.FAIL, "not found: pulumi up creates it")
    condition = _condition(service_entry, BOUND)
    if condition is None:
        return StatusResult(where, BOUND, Result.ERROR, f"no {BOUND} condition reported yet: istiod has not said whether "
                                                        "it is bound to the waypoint")
    if condition.get("status") != "True":
        return StatusResult(where, BOUND, Result.FAIL, _false(condition))
    spec = service_entry.get("spec", {})
    if target.unusable is None:
        missing = [host for host in target.hosts if host not in spec.get("hosts", [])]
        missing += [address for address in target.addresses if address not in spec.get("addresses", [])]
        if missing:
            return StatusResult(where, BOUND, Result.FAIL, f"bound, but it does not declare {', '.join(missing)}, as "
                                                           f"{source} expects: what is deployed is not what it describes")
    return StatusResult(where, BOUND, Result.PASS, f"bound ({condition.get('reason', 'no reason')})")


def _policies(kubectl: Kubectl, expectations: Expectations) -> Iterator[StatusResult]:
    for namespace in dict.fromkeys(target.namespace for target in expectations.targets):
        read = kubectl.get(POLICY_RESOURCE, namespace=namespace, selector=PART_OF_SELECTOR)
        where = f"AuthorizationPolicy {namespace}/*"
        if read.document is None:
            yield StatusResult(where, "WaypointAccepted", Result.ERROR, str(read.problem))
            continue
        policies = read.document.get("items", [])
        if not policies:
            yield StatusResult(where, "WaypointAccepted", Result.FAIL, f"none of the project in {namespace}: every "
                                                                       "ServiceEntry has an allow-nothing baseline")
        for policy in policies:
            yield _accepted(policy)


def _accepted(policy: Mapping[str, Any]) -> StatusResult:
    where = f"AuthorizationPolicy {_name(policy)}"
    condition = _condition(policy, "WaypointAccepted")
    if condition is None:
        return StatusResult(where, "WaypointAccepted", Result.ERROR, "no WaypointAccepted condition reported yet: the "
                                                                     "waypoint has not said whether it applies it")
    if condition.get("status") != "True" or condition.get("reason") == PARTIALLY_INVALID:
        return StatusResult(where, "WaypointAccepted", Result.FAIL, _false(condition))
    return StatusResult(where, "WaypointAccepted", Result.PASS, f"accepted ({condition.get('reason', 'no reason')})")
