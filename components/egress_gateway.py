"""EgressGateway: the egress namespace and its waypoint, the one door external traffic leaves by."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import manifests
from .names import check_namespace_ownership, dns_label_problem
from .resources import KubernetesObject, KubernetesPatch, child_options, kubernetes_object, kubernetes_patch, kubernetes_read
from .values import DEFAULT_EGRESS_NAMESPACE, DEFAULT_WAYPOINT_NAME, RouteNamespaces, Waypoint

TYPE_TOKEN = "ambient-egress:index:EgressGateway"


@dataclass(frozen=True, kw_only=True)
class EgressGatewayArgs:
    namespace: str = DEFAULT_EGRESS_NAMESPACE
    """The waypoint's namespace, enrolled in ambient."""
    create_namespace: bool = True
    """Own the namespace: created with the stack and deleted with it. False: it must exist; the
    stack only labels it for ambient, and leaves the label when it goes."""
    waypoint_name: str = DEFAULT_WAYPOINT_NAME
    """The name of the waypoint `Gateway` that ServiceEntries bind to."""
    access_logging: bool = True
    """Turn on Envoy access logs for the waypoint (a `Telemetry` targeting it)."""
    route_namespaces: RouteNamespaces = RouteNamespaces.SAME
    """Whose ServiceEntries the waypoint binds: its own namespace's, or every namespace's."""

    def __post_init__(self) -> None:
        for field, value in (("namespace", self.namespace), ("waypoint_name", self.waypoint_name)):
            problem = dns_label_problem(value)
            if problem:
                raise ValueError(f"EgressGatewayArgs.{field}: {value!r} {problem}")
        check_namespace_ownership("EgressGatewayArgs", self.namespace, owned=self.create_namespace)


class EgressGateway(pulumi.ComponentResource):
    """An ambient egress namespace with a waypoint `Gateway` (class `istio-waypoint`, HBONE 15008).

    `pulumi up` waits until the waypoint is Programmed (`waypoint.gateway`), so a ServiceEntry
    created after it is enforced from its first moment.
    """

    waypoint: Waypoint
    """The waypoint as ServiceEntries bind to it, with the Gateway to wait for."""
    namespace: pulumi.Output[str]
    """The egress namespace, resolved once it is there."""
    waypoint_name: pulumi.Output[str]
    """The waypoint's name, resolved once the Gateway is Programmed."""

    def __init__(self, name: str, args: EgressGatewayArgs | None = None, opts: pulumi.ResourceOptions | None = None):
        args = args or EgressGatewayArgs()
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespace: KubernetesObject | KubernetesPatch
        if args.create_namespace:
            namespace = kubernetes_object(
                f"{name}/namespace", manifests.namespace(args.namespace, ambient=True), child_options(self, opts))
        else:
            existing = kubernetes_read(f"{name}/existing-namespace: create it, or let the gateway own it",
                                       "v1", "Namespace", args.namespace, child_options(self, opts))
            # Un-enrolling on delete would leave whatever else uses the namespace unenforced.
            namespace = kubernetes_patch(
                f"{name}/namespace-labels", manifests.namespace_labels(args.namespace),
                child_options(self, opts, depends_on=[existing], retain_on_delete=True))
        plain = Waypoint(name=args.waypoint_name, namespace=args.namespace, route_namespaces=args.route_namespaces)
        gateway = kubernetes_object(
            f"{name}/waypoint", manifests.waypoint_gateway(plain), child_options(self, opts, depends_on=[namespace]))
        if args.access_logging:
            kubernetes_object(f"{name}/access-logs", manifests.waypoint_access_logging(plain),
                              child_options(self, opts, depends_on=[gateway]))

        self.waypoint = Waypoint(name=args.waypoint_name, namespace=args.namespace, route_namespaces=args.route_namespaces,
                                 gateway=gateway)
        self.namespace = namespace.metadata.apply(lambda _: args.namespace)
        self.waypoint_name = gateway.metadata.apply(lambda _: args.waypoint_name)
        self.register_outputs({"namespace": self.namespace, "waypoint_name": self.waypoint_name})
