"""ExternalService: any service outside the mesh, behind the egress waypoint and closed by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from . import manifests
from ._kubernetes import child_options, kubernetes_object, render
from .config import ServicePort

TYPE_TOKEN = "ambient-egress:index:ExternalService"


@dataclass(frozen=True)
class ExternalServiceArgs:
    address: pulumi.Input[str]
    """A DNS name, used as the host as it is, or an IPv4 address, whose host becomes `<ip>.nip.io`."""
    ports: Sequence[ServicePort]
    waypoint_name: pulumi.Input[str]
    """The egress waypoint the ServiceEntry binds to (`EgressGateway.waypoint_name`)."""
    waypoint_namespace: pulumi.Input[str]
    """The waypoint's namespace (`EgressGateway.namespace`)."""
    service_entry_namespace: pulumi.Input[str] | None = None
    """Where the ServiceEntry and its policies live. Default: the waypoint's namespace."""
    pin_address: bool = True
    """Put an IPv4 address on the ServiceEntry so raw-IP connections also meet the waypoint."""
    tls_origination: bool = False
    """Clients speak plain HTTP; the waypoint sends TLS to port 443 (every port must be HTTP)."""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """Headers the waypoint adds to each request (needs exactly one HTTP port)."""


class ExternalService(pulumi.ComponentResource):
    """A ServiceEntry bound to the egress waypoint, guarded from its first moment by an
    allow-nothing policy, with optional TLS origination and request headers at the waypoint."""

    service_name: str
    ports: tuple[ServicePort, ...]
    namespace: pulumi.Input[str]
    """Where the ServiceEntry and its policies live, as given (plain when known up front)."""
    service_entry: pulumi.CustomResource
    """The ServiceEntry itself, for policies that must come after it and go before it."""
    host: pulumi.Output[str]
    address: pulumi.Output[str]
    service_entry_name: pulumi.Output[str]
    service_entry_namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ExternalServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        if not args.ports:
            raise ValueError(f"ExternalService {name}: declare at least one port")
        http_ports = [port for port in args.ports if port.is_http]
        if args.tls_origination and len(http_ports) != len(args.ports):
            raise ValueError(f"ExternalService {name}: tls_origination needs every port to be HTTP")
        if args.request_headers and len(http_ports) != 1:
            raise ValueError(f"ExternalService {name}: request_headers need exactly one HTTP port")
        self.service_name = name
        self.ports = tuple(args.ports)
        self.namespace = namespace = (
            args.service_entry_namespace if args.service_entry_namespace is not None else args.waypoint_namespace
        )
        address = args.address
        host = render(manifests.host_for_address, address)

        # The baseline exists before the ServiceEntry, so the service is never open, not even for
        # the moment between the two; on destroy the ServiceEntry goes first for the same reason.
        allow_nothing = kubernetes_object(
            f"{name}-allow-nothing",
            render(lambda ns: manifests.allow_nothing_policy(name, ns), namespace),
            child_options(self, opts), api_version="security.istio.io/v1", kind="AuthorizationPolicy",
        )
        self.service_entry = kubernetes_object(
            f"{name}-service-entry",
            render(
                lambda address, ns, waypoint_name, waypoint_namespace: manifests.service_entry(
                    name, ns, address=address, ports=self.ports,
                    waypoint=manifests.Waypoint(waypoint_name, waypoint_namespace),
                    pin_address=args.pin_address, tls_origination=args.tls_origination,
                ),
                address, namespace, args.waypoint_name, args.waypoint_namespace,
            ),
            child_options(self, opts, allow_nothing), api_version="networking.istio.io/v1", kind="ServiceEntry",
        )
        after_entry = child_options(self, opts, self.service_entry)
        if args.tls_origination:
            kubernetes_object(
                f"{name}-tls-origination",
                render(lambda ns, host: manifests.tls_origination_rule(name, ns, host), namespace, host),
                after_entry, api_version="networking.istio.io/v1", kind="DestinationRule",
            )
        if args.request_headers:
            headers = tuple(args.request_headers.items())
            kubernetes_object(
                f"{name}-request-headers",
                render(lambda ns, host: manifests.request_header_route(
                    name, ns, host=host, port=http_ports[0].number, headers=headers), namespace, host),
                after_entry, api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute",
            )

        self.address = pulumi.Output.from_input(address)
        self.host = pulumi.Output.from_input(host)
        self.service_entry_name = self.service_entry.metadata.apply(lambda metadata: metadata["name"])
        self.service_entry_namespace = self.service_entry.metadata.apply(lambda metadata: metadata["namespace"])
        self.register_outputs({
            "host": self.host, "address": self.address,
            "service_entry_name": self.service_entry_name, "service_entry_namespace": self.service_entry_namespace,
        })
