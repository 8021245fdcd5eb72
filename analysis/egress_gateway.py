"""Sidecar mode's egress gateway (seed 001): where a namespace's sidecars send a ServiceEntry's host,
and what the gateway does with it.

  route    the first VirtualService bound to `mesh` for the host that the namespace sees (exportTo,
           Sidecar hosts; see `sidecar`): istiod files a VirtualService under its own `gateways`,
           none meaning `mesh` (`push_context.go` getGatewayNames), and a match's `gateways` then
           narrow its routes. istiod keeps one per host, the oldest, and the manifests show no
           creation time, so the analysis takes the first by namespace and name. Its `http`
           routes serve an HTTP port, `tls` then `tcp` routes a TLS or HTTPS port (a `tls` match
           needs `sniHosts` holding the host), `tcp` routes any other; a match applies on its
           `port` (none: every port) and `sourceNamespace`; one with any other condition takes only
           some connections, and the routes after it the rest. No route applying: Istio's default,
           the host itself, straight out. A destination that is a Service of the cluster
           (`<name>.<namespace>.svc.cluster.local`, or a short name in the VirtualService's
           namespace) is taken as the egress gateway (API `networking/v1alpha3/virtual_service.proto`).
  hop      the sidecar's DestinationRule for the gateway's host, looked up as istiod does
           (`pilot/pkg/model/push_context.go` destinationRule): the client's namespace, else the
           Service's namespace, else the root namespace, each for rules exported to the client;
           rules of one namespace for one host merge their subsets when their `exportTo` is the
           same, and otherwise the sidecar uses the last one (`SidecarScope.DestinationRule`,
           `mergeDestinationRule`), an order the manifests do not show. A route to a subset no
           rule defines has no cluster: the connection fails. The subset's TLS settings for the
           gateway's port win over its own, then the rule's: `ISTIO_MUTUAL` carries the client's
           identity with `sni` as the server name, or, without `sni`, the cluster's name
           (`outbound_.<port>_.<subset>_.<host>`, `cluster_builder.go`); no setting leaves it to
           auto mTLS, which turns on what the manifests do not show.
  gateway  a networking `Gateway` of any namespace (`PILOT_SCOPE_GATEWAY_TO_NAMESPACE` is off by
           default, `pilot/pkg/features/pilot.go`) whose `selector` picks the gateway's pods (its
           Service's selector when the Service is shown; otherwise the Gateway is trusted to) has
           a server on the port the route dials, for the host. A server that terminates TLS needs
           TLS from the sidecar with a server name its `hosts` hold (its filter chains match on
           SNI), and a client certificate for `ISTIO_MUTUAL` or `MUTUAL`; a plaintext server takes
           no TLS. Then a VirtualService filed under that Gateway routes the host on that port, or
           the gateway drops it.
  policy   the gateway applies the AuthorizationPolicies without `targetRefs` of its own namespace
           and of the root namespace whose `selector` picks its pods (none: every workload); a
           selector on labels the manifests do not show of them counts as picking them. Identity
           clauses need mutual TLS on the hop; `connection.sni` is the hop's server name; `hosts`
           the host; `destination.port` the gateway's port. HTTP rules apply where the server
           parses HTTP: `HTTP`, `HTTP2`, `GRPC`, or `HTTPS` terminated.
  network  the client namespace's egress NetworkPolicies must let its pods reach the gateway's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .attachment import policies
from .authz import PortRules
from .istio import Istio
from .manifests import AUTHORIZATION_POLICY, DESTINATION_RULE, SERVICE, Kind, MeshIndex, ObjectRef, Resource
from .mesh import is_http_protocol
from .netpol import CLIENT_PODS, Direction, Labels, allows, namespace_labels, selector_matches
from .policy import Policy
from .sidecar import exported_to, host_within, service_visible, sidecar_scopes
from .verdict import Decision, Verdict

VIRTUAL_SERVICE = Kind("networking.istio.io", "VirtualService")
ISTIO_GATEWAY = Kind("networking.istio.io", "Gateway")
MESH = "mesh"
_CLUSTER_SERVICE = re.compile(r"^(?P<name>[^.]+)\.(?P<namespace>[^.]+)\.svc\.cluster\.local$")
# Match fields that pick the connection itself, rather than some requests or pods of it.
_WHOLE_CONNECTION = {"gateways", "port", "sniHosts", "sourceNamespace"}
_TLS_PROTOCOLS = {"TLS", "HTTPS"}
_TERMINATING = {"SIMPLE", "MUTUAL", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"}
_CLIENT_CERTIFICATE = {"MUTUAL", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"}


@dataclass(frozen=True)
class Route:
    """Where a namespace's sidecars send a ServiceEntry's host on one port."""

    virtual_service: ObjectRef | None
    gateway: ObjectRef | None  # the Service the route sends (some of) the connections to
    port: int  # the port it dials there
    subset: str | None
    straight: str | None  # why (some of) the connections go straight to the host, if they do


def mesh_route(index: MeshIndex, namespace: str, host: str, port: int, protocol: str, istio: Istio) -> Route:
    """The route the sidecars of `namespace` take for `host` on `port` (declared with `protocol`)."""
    bound = [vs for vs in _virtual_services(index, host) if _sees(index, namespace, vs, host, port, istio)]
    bound = [vs for vs in bound if MESH in _bound_to(vs)]
    if not bound:
        return Route(None, None, port, None, f"no VirtualService bound to mesh routes {host}, so it goes straight out to it")
    virtual_service = bound[0]
    kinds = ["http"] if is_http_protocol(protocol) else ["tls", "tcp"] if protocol.upper() in _TLS_PROTOCOLS else ["tcp"]
    ref = virtual_service.ref
    inside, outside = [], []
    for written, number, subset in _destinations(virtual_service, kinds, {MESH}, port, host, namespace):
        service = _cluster_service(written, virtual_service.namespace) if written is not None else None
        if written is None:
            outside.append(f"{host} itself (no route of VirtualService {ref} takes every connection on port {port})")
        elif service is None:
            outside.append(f"{written} (VirtualService {ref})")
        else:
            inside.append((service, number, subset))
    straight = f"{'some of its connections go' if inside else 'it goes'} straight out to {outside[0]}" if outside else None
    if not inside:
        # A route without a destination fails Istio's validation, which leaves the host to its default route.
        return Route(ref, None, port, None, straight or f"it goes straight out to {host} (VirtualService {ref} is invalid)")
    service, number, subset = inside[0]
    return Route(ref, service, number or port, subset, straight)


def _virtual_services(index: MeshIndex, host: str) -> tuple[Resource, ...]:
    by_host = index.derived("virtual services by host", lambda: _by_host(index.all(VIRTUAL_SERVICE)))
    wildcards = [vs for pattern, found in by_host.items() if "*" in pattern and host_within(host, pattern) for vs in found]
    found = {vs.ref: vs for vs in (*by_host.get(host, ()), *wildcards)}
    return tuple(found[ref] for ref in sorted(found))


def _by_host(resources: Sequence[Resource]) -> Mapping[str, tuple[Resource, ...]]:
    found: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        for host in resource.spec.get("hosts") or []:
            found[str(host)].append(resource)
    return {host: tuple(listed) for host, listed in found.items()}


def _sees(index: MeshIndex, namespace: str, resource: Resource, host: str, port: int, istio: Istio) -> bool:
    """Whether the sidecars of `namespace` get the VirtualService: exported to them and imported."""
    if not exported_to(resource.spec.get("exportTo"), resource.namespace, namespace):
        return False
    return any(scope.imports_host(host, resource.namespace, port) for scope in sidecar_scopes(index, namespace, istio))


def _bound_to(virtual_service: Resource) -> set[str]:
    """The gateways the VirtualService binds, `namespace/name` or `mesh`; none written is `mesh`."""
    return {_gateway_ref(written, virtual_service.namespace) for written in virtual_service.spec.get("gateways") or [MESH]}


def _gateway_ref(written: str, namespace: str) -> str:
    return written if written == MESH or "/" in written else f"{namespace}/{written}"


def _destinations(
    virtual_service: Resource, kinds: Sequence[str], gateways: set[str], port: int, host: str, client_namespace: str | None
) -> Iterator[tuple[str | None, int | None, str | None]]:
    """(host, port, subset) of each destination the routes of `kinds` give a connection on `port`
    through one of `gateways`, up to the first route that takes every such connection; a last
    (None, None, None) when none does and the rest go to the host itself."""
    bound = _bound_to(virtual_service)
    for kind in kinds:
        for route in virtual_service.spec.get(kind) or []:
            taken = _takes(route.get("match") or [], bound, gateways, port, host, virtual_service.namespace, client_namespace)
            if taken is None:
                continue
            for destination in route.get("route") or []:
                target = destination.get("destination") or {}
                yield str(target.get("host", "")), (target.get("port") or {}).get("number"), target.get("subset")
            if taken:
                return
    yield None, None, None


def _takes(
    matches: Sequence[Mapping[str, Any]], bound: set[str], gateways: set[str], port: int, host: str,
    namespace: str, client_namespace: str | None,
) -> bool | None:
    """Whether a route takes every connection (True), some (False) or none (None)."""
    if not matches:
        return True if bound & gateways else None
    taken: bool | None = None
    for match in matches:
        on = {_gateway_ref(g, namespace) for g in match["gateways"]} if match.get("gateways") else bound
        if not on & gateways or match.get("port") not in (None, port):
            continue
        if "sniHosts" in match and not any(host_within(host, str(sni)) for sni in match["sniHosts"]):
            continue
        if client_namespace is not None and match.get("sourceNamespace") not in (None, client_namespace):
            continue
        whole = set(match) <= _WHOLE_CONNECTION
        taken = True if whole else (taken or False)
    return taken


def _cluster_service(written: str, namespace: str) -> ObjectRef | None:
    """The Service a destination host names, short names in the VirtualService's namespace; None for
    a host outside the cluster."""
    if written and "." not in written:
        return ObjectRef(namespace, written)
    match = _CLUSTER_SERVICE.match(written)
    return ObjectRef(match["namespace"], match["name"]) if match else None


# --- the hop to the gateway -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """The sidecar's connection to the gateway, as its DestinationRule sets it."""

    mode: str | None  # the TLS mode; None: not set, so auto mTLS
    sni: str  # the server name sent, "" without TLS
    rule: ObjectRef | None
    missing: Verdict | None = None  # why the route's subset does not exist for the sidecar, if it does not


def hop(index: MeshIndex, namespace: str, route: Route, istio: Istio) -> Hop:
    """The hop from the sidecars of `namespace` to `route.gateway`, worked out once per index."""
    key = ("gateway hop", namespace, route.gateway, route.port, route.subset, istio)
    return index.derived(key, lambda: _hop(index, namespace, route, istio))


def _hop(index: MeshIndex, namespace: str, route: Route, istio: Istio) -> Hop:
    assert route.gateway is not None
    service = route.gateway
    gateway_host = f"{service.name}.{service.namespace}.svc.cluster.local"
    groups = _rule_groups(index, namespace, gateway_host, service.namespace, istio)
    default_sni = f"outbound_.{route.port}_.{route.subset or ''}_.{gateway_host}"
    if route.subset is not None:
        holding = [group for group in groups if any(s.get("name") == route.subset for rule in group for s in _subsets(rule))]
        where = f"for {gateway_host} exported to namespace {namespace}"
        if not holding:
            missing = (
                f"no DestinationRule {where} in the namespaces its sidecars look in ({namespace}, {service.namespace}, "
                f"{istio.root_namespace}) defines subset {route.subset}, so they have no cluster for the route and "
                "the connection fails"
            )
            return Hop(None, "", None, Verdict(Decision.DENY, missing))
        if len(holding) < len(groups):
            split = (
                f"the DestinationRules {where} do not merge (their exportTo differ) and only the last one created "
                f"counts; subset {route.subset} is in some of them only, so it turns on their creation order"
            )
            return Hop(None, "", None, Verdict(Decision.UNDECIDED, split))
    for group in groups:
        for rule in group:
            tls = _tls(rule, route.subset, route.port)
            if tls is not None:
                mode = str(tls.get("mode", "DISABLE"))
                sni = "" if mode == "DISABLE" else str(tls.get("sni") or default_sni)
                return Hop(mode, sni, rule.ref)
    return Hop(None, default_sni, None)


def _rule_groups(
    index: MeshIndex, namespace: str, host: str, service_namespace: str, istio: Istio
) -> list[list[Resource]]:
    """The DestinationRules for `host` the sidecars of `namespace` use, as groups istiod merges."""
    for looked_in in dict.fromkeys((namespace, service_namespace, istio.root_namespace)):
        rules = [
            rule for rule in index.in_namespace(DESTINATION_RULE, looked_in)
            if host_within(host, str(rule.spec.get("host", ""))) and not rule.spec.get("workloadSelector")
            and exported_to(rule.spec.get("exportTo"), rule.namespace, namespace)
        ]
        if rules:
            grouped: dict[tuple[str, ...], list[Resource]] = defaultdict(list)
            for rule in rules:
                grouped[tuple(sorted(map(str, rule.spec.get("exportTo") or [])))].append(rule)
            return list(grouped.values())
    return []


def _subsets(rule: Resource) -> list[Mapping[str, Any]]:
    return [subset or {} for subset in rule.spec.get("subsets") or []]


def _tls(rule: Resource, subset: str | None, port: int) -> Mapping[str, Any] | None:
    """The TLS settings for `port`: the subset's port-level, the subset's, the rule's port-level, the rule's."""
    policies: list[Mapping[str, Any]] = [s.get("trafficPolicy") or {} for s in _subsets(rule) if s.get("name") == subset]
    policies.append(rule.spec.get("trafficPolicy") or {})
    for policy in policies:
        for settings in policy.get("portLevelSettings") or []:
            if (settings.get("port") or {}).get("number") == port and settings.get("tls"):
                return dict(settings["tls"])
        if policy.get("tls"):
            return dict(policy["tls"])
    return None


# --- the gateway ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPath:
    """What the egress gateway does with connections a sidecar sends it for one host: a verdict for
    every client when the path is broken, else the rules its policies judge them by."""

    gateway: ObjectRef  # its Service
    broken: Verdict | None
    rules: PortRules | None = None
    port: int = 0  # the gateway's server port
    sni: str = ""
    mutual_tls: bool | None = True
    hop: Hop | None = None


def gateway_path(
    index: MeshIndex, namespace: str, service_entry: Resource, host: str, route: Route, istio: Istio
) -> GatewayPath:
    """The gateway's side of `route` for the sidecars of `namespace` and the ServiceEntry's `host`."""
    assert route.gateway is not None
    service = route.gateway
    gateway = f"egress gateway {service}"

    def broken(decision: Decision, why: str) -> GatewayPath:
        return GatewayPath(service, Verdict(decision, f"VirtualService {route.virtual_service} sends it to {gateway}, but {why}"))

    if not service_visible(index, namespace, service, route.port, istio):
        return broken(Decision.DENY, f"the sidecars of namespace {namespace} do not import its Service, so they have no "
                                     "cluster for it")
    the_hop = hop(index, namespace, route, istio)
    if the_hop.missing is not None:
        return GatewayPath(service, the_hop.missing)
    server_at = gateway_server(index, service, host, route.port)
    if server_at is None:
        return broken(Decision.DENY, f"no networking Gateway configures a server for {host} on its port {route.port}")
    listener, server = server_at
    problem = _tls_mismatch(server, the_hop)
    if problem is not None:
        return broken(Decision.DENY, problem)
    http = _parses_http(server)
    if not _routes_out(index, listener, service.namespace, host, route.port, http):
        return broken(Decision.DENY, f"no VirtualService bound to Gateway {listener.ref} routes {host} on port {route.port}")
    if not exported_to(service_entry.spec.get("exportTo"), service_entry.namespace, service.namespace):
        return broken(Decision.DENY, f"ServiceEntry {service_entry.ref} is not exported to the gateway's namespace "
                                     f"{service.namespace}, so the gateway has no cluster for {host}")
    if not _client_reaches(index, namespace, service, _pod_labels(index, service, listener)):
        return broken(Decision.DENY, f"the egress NetworkPolicies of namespace {namespace} do not let its pods reach the "
                                     "gateway's pods")
    mode = (server.get("tls") or {}).get("mode")
    mutual_tls = None if the_hop.mode is None else the_hop.mode == "ISTIO_MUTUAL" and mode in _CLIENT_CERTIFICATE
    applied = gateway_policies(index, service.namespace, _pod_labels(index, service, listener), istio)
    rules = PortRules(service_entry.ref, host, None, applied, http)
    return GatewayPath(service, None, rules, route.port, the_hop.sni, mutual_tls, the_hop)


def gateway_server(
    index: MeshIndex, service: ObjectRef, host: str, port: int
) -> tuple[Resource, Mapping[str, Any]] | None:
    """The first networking Gateway (and its server) on the gateway's pods serving `host` on `port`."""
    shown = index.get(SERVICE, service)
    for gateway in index.all(ISTIO_GATEWAY):
        selector = gateway.spec.get("selector") or {}
        if shown is not None and selector_matches({"matchLabels": selector}, Labels(shown.spec.get("selector") or {})) is False:
            continue
        for server in gateway.spec.get("servers") or []:
            hosts = [str(written).rpartition("/")[2] for written in server.get("hosts") or []]
            if (server.get("port") or {}).get("number") == port and any(host_within(host, h) for h in hosts):
                return gateway, server
    return None


def _tls_mismatch(server: Mapping[str, Any], sent: Hop) -> str | None:
    """Why the gateway's server refuses what the sidecar sends, if it does."""
    mode = (server.get("tls") or {}).get("mode")
    hosts = [str(written).rpartition("/")[2] for written in server.get("hosts") or []]
    if mode in _TERMINATING:
        if sent.mode == "DISABLE":
            return f"its server terminates TLS ({mode}) and DestinationRule {sent.rule} sends plaintext"
        if not any(host_within(sent.sni, host) for host in hosts):
            return (f"its server ({mode}) matches the server names {', '.join(hosts)} and the sidecar sends "
                    f"\"{sent.sni}\" (the DestinationRule's tls.sni, or the cluster name without one)")
        if mode in _CLIENT_CERTIFICATE and sent.mode == "SIMPLE":
            return f"its server wants a client certificate ({mode}) and DestinationRule {sent.rule} sends none (SIMPLE)"
    elif sent.mode not in (None, "DISABLE"):
        return f"its server takes plaintext and DestinationRule {sent.rule} sends TLS ({sent.mode})"
    return None


def _parses_http(server: Mapping[str, Any]) -> bool:
    protocol = str((server.get("port") or {}).get("protocol", "")).upper()
    mode = (server.get("tls") or {}).get("mode")
    return is_http_protocol(protocol) or (protocol == "HTTPS" and mode in _TERMINATING)


def _routes_out(index: MeshIndex, listener: Resource, namespace: str, host: str, port: int, http: bool) -> bool:
    """Whether a VirtualService the gateway's pods (of `namespace`) get routes `host` through
    `listener` on `port`."""
    bound = {f"{listener.namespace}/{listener.name}"}
    kinds = ["http"] if http else ["tcp", "tls"]
    return any(
        written is not None
        for vs in _virtual_services(index, host)
        if bound <= _bound_to(vs) and exported_to(vs.spec.get("exportTo"), vs.namespace, namespace)
        for written, _, _ in _destinations(vs, kinds, bound, port, host, None)
    )


def _pod_labels(index: MeshIndex, service: ObjectRef, listener: Resource) -> Labels:
    """The gateway's pods, by its Service's selector when shown, else by the Gateway's selector."""
    shown = index.get(SERVICE, service)
    if shown is not None:
        return Labels(shown.spec.get("selector") or {})
    return Labels(dict(listener.spec.get("selector") or {}))


def _client_reaches(index: MeshIndex, namespace: str, service: ObjectRef, pods: Labels) -> bool:
    labels = namespace_labels(index, service.namespace)
    return allows(
        index, namespace, CLIENT_PODS, Direction.EGRESS,
        lambda peer: peer.may_match_pods(namespace, service.namespace, labels, pods),
    )


def gateway_policies(index: MeshIndex, namespace: str, pods: Labels, istio: Istio) -> tuple[Policy, ...]:
    """The AuthorizationPolicies a gateway of `namespace` with `pods`' labels applies, sorted as the index is."""
    return tuple(
        policy
        for policy, selector in _selector_policies(index)
        if policy.ref.namespace in (namespace, istio.root_namespace)
        and (not selector or selector_matches({"matchLabels": selector}, pods) is not False)
    )


def _selector_policies(index: MeshIndex) -> tuple[tuple[Policy, Mapping[str, str]], ...]:
    """Policies without targetRefs, with their selector's labels; worked out once per index."""

    def build() -> tuple[tuple[Policy, Mapping[str, str]], ...]:
        resources = index.all(AUTHORIZATION_POLICY)
        return tuple(
            (policy, (resource.spec.get("selector") or {}).get("matchLabels") or {})
            for resource, policy in zip(resources, policies(index), strict=True)
            if not policy.targets
        )

    return index.derived("selector policies", build)


def gateway_policy_refs(index: MeshIndex, istio: Istio) -> frozenset[ObjectRef]:
    """The policies some egress gateway applies: that of every Service a VirtualService route sends
    a host to where a networking Gateway serves that host on that port. Worked out once per index."""

    def build() -> frozenset[ObjectRef]:
        found: set[ObjectRef] = set()
        for virtual_service in index.all(VIRTUAL_SERVICE):
            for service, port in _service_destinations(virtual_service):
                for host in virtual_service.spec.get("hosts") or []:
                    served = gateway_server(index, service, str(host), port)
                    if served is not None:
                        pods = _pod_labels(index, service, served[0])
                        found |= {policy.ref for policy in gateway_policies(index, service.namespace, pods, istio)}
        return frozenset(found)

    return index.derived(("gateway policies", istio), build)


def _service_destinations(virtual_service: Resource) -> Iterator[tuple[ObjectRef, int]]:
    """(Service, port) of every route destination of the VirtualService in the cluster."""
    for kind in ("http", "tls", "tcp"):
        for route in virtual_service.spec.get(kind) or []:
            for destination in route.get("route") or []:
                target = destination.get("destination") or {}
                service = _cluster_service(str(target.get("host", "")), virtual_service.namespace)
                port = (target.get("port") or {}).get("number")
                if service is not None and port:
                    yield service, int(port)
