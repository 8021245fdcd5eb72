"""`istioctl analyze`-style checks of AuthorizationPolicies, each finding saying how to fix it."""

from __future__ import annotations

from collections.abc import Iterator

from .attachment import policies
from .catalogue import Code, Finding, report
from .egress_gateway import gateway_policy_refs
from .istio import Behaviour, Istio
from .manifests import AUTHORIZATION_POLICY, GATEWAY, GATEWAY_CLASS, SERVICE_ENTRY, MeshIndex, ObjectRef, Resource
from .matching import path_pattern_problem
from .mesh import DATAPLANE_MODE, WAYPOINT_CLASS, Enrollment, enrollment, is_waypoint, service_entry_ports
from .policy import CONNECTION_SNI, REQUEST_PATH, Policy, TargetRef


def policy_findings(index: MeshIndex, istio: Istio) -> Iterator[Finding]:
    """Policies an egress gateway applies (sidecar mode) are not waypoint policies: the checks of
    where a waypoint looks for policies and of ambient sources pass them by, and their
    `connection.sni` is evaluated."""
    at_gateways = gateway_policy_refs(index, istio)
    checks = (_policy_targets, _http_only_rules, _unexposed_policy_ports)
    for check in checks:
        yield from check(index)
    yield from _source_namespaces(index, at_gateways)
    egress_namespaces = {resource.namespace for resource in index.all(SERVICE_ENTRY)}
    egress_namespaces |= {gateway.namespace for gateway in index.all(GATEWAY) if is_waypoint(gateway)}
    for resource, policy in _policies(index):
        if not policy.targets:
            if policy.ref in at_gateways:
                yield from _rule_fields(resource, policy, istio, evaluated=frozenset({CONNECTION_SNI}))
            elif resource.namespace in egress_namespaces:
                yield report(
                    Code.POLICY_IGNORED_BY_WAYPOINT,
                    resource,
                    "Has no targetRefs, so waypoints ignore it (it applies to the namespace's own workloads "
                    "through ztunnel); target the ServiceEntry or the waypoint Gateway with spec.targetRefs",
                )
            continue
        yield from _gateway_class_targets(resource, policy, istio)
        if policy.dry_run:
            yield report(
                Code.POLICY_DRY_RUN,
                resource,
                "istio.io/dry-run is true: Istio logs what the policy would do and enforces nothing; the "
                "access matrix judges without it, and each cell it would change says how",
            )
        if policy.action != "AUDIT":
            yield from _rule_fields(resource, policy, istio)


def _gateway_class_targets(resource: Resource, policy: Policy, istio: Istio) -> Iterator[Finding]:
    for target in policy.targets:
        if target.kind != GATEWAY_CLASS:
            continue
        if target.name != WAYPOINT_CLASS:
            why = f"GatewayClass {target.name} is not {WAYPOINT_CLASS}, the only class a policy can target"
        elif resource.namespace != istio.root_namespace:
            why = (
                f"it is not in the root namespace {istio.root_namespace}; move it there (or analyse with "
                "--root-namespace if the mesh's rootNamespace is another)"
            )
        elif not istio.has(Behaviour.GATEWAY_CLASS_POLICIES):
            since = Behaviour.GATEWAY_CLASS_POLICIES.since
            why = f"Istio {istio.version} does not apply GatewayClass targets ({since} does)"
        else:
            continue
        yield report(
            Code.GATEWAY_CLASS_POLICY_IGNORED,
            resource,
            f"Targets GatewayClass {target.name} but applies to no waypoint: {why}",
        )


def _rule_fields(
    resource: Resource, policy: Policy, istio: Istio, *, evaluated: frozenset[str] = frozenset()
) -> Iterator[Finding]:
    """Fields Istio rejects, does not have in this release, or the analysis cannot evaluate (where
    the policy applies, it does evaluate the attributes `evaluated`)."""
    if policy.action == "CUSTOM":
        yield report(
            Code.RULE_NOT_EVALUATED,
            resource,
            "CUSTOM action: matching requests go to an external authorizer the manifests cannot show, so "
            "cells it may match read UNDECIDED; check them against the provider's own rules",
        )
    for position, rule in enumerate(policy.rules):
        where = f"rules[{position}]"
        for clause in rule.clauses():
            behaviour = clause.behaviour
            if clause.unknown_key:
                yield report(
                    Code.UNKNOWN_CONDITION_KEY,
                    resource,
                    f'{where} has condition key "{clause.attribute}", which Istio does not know: its validation '
                    "rejects the policy, and an istiod that gets it anyway skips the rule; use a key from "
                    "istio.io's authorization conditions reference",
                )
            elif behaviour is not None and not istio.has(behaviour):
                yield report(
                    Code.FIELD_NEEDS_NEWER_ISTIO,
                    resource,
                    f"{where} uses {clause.field}, which Istio {istio.version} does not have (from "
                    f"{behaviour.since}); upgrade Istio, or write the rule with principals",
                )
            elif clause.not_evaluated is not None and clause.attribute not in evaluated:
                yield report(
                    Code.RULE_NOT_EVALUATED,
                    resource,
                    f"{where} uses {clause.field}: {clause.not_evaluated}, so cells that turn on it read UNDECIDED",
                )
            if clause.attribute == REQUEST_PATH:
                for path in clause.values:
                    problem = path_pattern_problem(path)
                    if problem is not None:
                        yield report(
                            Code.PATH_PATTERN_PROBLEM,
                            resource,
                            f'{where} path "{path}" {problem}; write an exact path, a prefix (/api/*), a suffix '
                            "(*.json) or a template (/api/{*}/items)",
                        )


def _policies(index: MeshIndex) -> Iterator[tuple[Resource, Policy]]:
    return zip(index.all(AUTHORIZATION_POLICY), policies(index), strict=True)


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
            yield report(
                Code.POLICY_TARGET_IN_OTHER_NAMESPACE,
                resource,
                f'Referenced ServiceEntry "{target.name}" exists only in namespace {elsewhere}: targetRefs '
                "cannot cross namespaces, so the policy does not apply; move it to the ServiceEntry's namespace",
            )
        else:
            yield report(
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
                yield report(
                    Code.ALLOW_RULE_NEVER_MATCHES_TCP,
                    resource,
                    f"{where}, so the rule never matches and allows nothing; "
                    "limit TCP rules to ports, namespaces and principals",
                )
            elif policy.action == "DENY":
                yield report(
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
            yield report(
                Code.POLICY_PORT_NOT_EXPOSED,
                resource,
                f'Port "{port}" is not exposed by {service_entry} (ports: {", ".join(exposed) or "none"}), '
                "so rules on it never match; use one of its port numbers",
            )


def _source_namespaces(index: MeshIndex, at_gateways: frozenset[ObjectRef]) -> Iterator[Finding]:
    for resource, policy in _policies(index):
        if policy.ref in at_gateways:
            continue
        for namespace in sorted(policy.source_namespaces()):
            state = enrollment(index, namespace)
            if state in (Enrollment.NOT_ENROLLED, Enrollment.SIDECAR):
                yield report(
                    Code.SOURCE_NAMESPACE_NOT_AMBIENT,
                    resource,
                    f'Source namespace "{namespace}" {state.value}, so its traffic bypasses the waypoint and this '
                    f"policy; label it {DATAPLANE_MODE}=ambient",
                )
            elif state is Enrollment.UNKNOWN:
                yield report(
                    Code.SOURCE_NAMESPACE_NOT_FOUND,
                    resource,
                    f'Source namespace "{namespace}" {state.value}; add one labelled {DATAPLANE_MODE}=ambient '
                    "or fix the policy's source",
                )
