"""EgressGateway: the egress namespace and its waypoint, the one door external traffic leaves by."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import manifests
from ._kubernetes import kubernetes_object
from .config import DEFAULT_EGRESS_NAMESPACE, DEFAULT_WAYPOINT_NAME

TYPE_TOKEN = "ambient-egress:index:EgressGateway"


@dataclass(frozen=True)
class EgressGatewayArgs:
    namespace: str = DEFAULT_EGRESS_NAMESPACE
    """The namespace created for the waypoint, enrolled in ambient."""
    waypoint_name: str = DEFAULT_WAYPOINT_NAME
    """The name of the waypoint `Gateway` that ServiceEntries bind to."""
    access_logging: bool = True
    """Turn on Envoy access logs for the waypoint (a `Telemetry` targeting it)."""


class EgressGateway(pulumi.ComponentResource):
    """An ambient egress namespace with a waypoint `Gateway` (class `istio-waypoint`, HBONE 15008)."""

    namespace: pulumi.Output[str]
    """The egress namespace, resolved once it exists."""
    waypoint_name: pulumi.Output[str]
    """The waypoint's name, resolved once the Gateway exists."""

    def __init__(self, name: str, args: EgressGatewayArgs | None = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        args = args or EgressGatewayArgs()
        waypoint = manifests.Waypoint(args.waypoint_name, args.namespace)
        namespace = kubernetes_object(
            f"{name}-namespace", manifests.namespace(args.namespace, ambient=True), pulumi.ResourceOptions(parent=self)
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        gateway = kubernetes_object(f"{name}-waypoint", manifests.waypoint_gateway(waypoint), in_namespace)
        if args.access_logging:
            kubernetes_object(f"{name}-access-logs", manifests.waypoint_access_logging(waypoint),
                              pulumi.ResourceOptions(parent=self, depends_on=[gateway]))

        self.namespace = namespace.metadata.name
        self.waypoint_name = gateway.metadata.apply(lambda _: args.waypoint_name)
        self.register_outputs({"namespace": self.namespace, "waypoint_name": self.waypoint_name})
