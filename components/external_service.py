"""ExternalService: any service outside the mesh, behind the egress waypoint and closed by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from . import manifests
from .grants import Access, AccessGrant, Grantee
from .names import address_problem, service_name_problem
from .resources import child_options, derived, kubernetes_object
from .values import EgressGatewayRef, ServicePort, Waypoint, host_for_address, is_ipv4

TYPE_TOKEN = "ambient-egress:index:ExternalService"


@dataclass(frozen=True, kw_only=True)
class ExternalServiceArgs:
    address: pulumi.Input[str]
    """A DNS name, used as the host as it is, or an IPv4 address, whose host becomes `<ip>.nip.io`."""
    ports: Sequence[ServicePort]
    waypoint: Waypoint | None = None
    """Ambient: the egress waypoint the ServiceEntry binds to (`EgressGateway.waypoint`)."""
    egress_gateway: EgressGatewayRef | None = None
    """Sidecar mode instead: the Istio egress gateway sidecars send the host to
    (`SidecarEgressGateway.gateway`). Exactly one of `waypoint` and `egress_gateway`."""
    visible_to: Sequence[str] = ()
    """Sidecar mode: the namespaces whose sidecars may see the host (the granted ones)."""
    service_name: str | None = None
    """The ServiceEntry's name. Default: the component's resource name."""
    namespace: str | None = None
    """Where the ServiceEntry and its policies live. Default: the waypoint's namespace."""
    pin_address: bool = True
    """Put an IPv4 address on the ServiceEntry so raw-IP connections also meet the waypoint."""
    ip_passthrough: bool = False
    """For a pinned IPv4 address, `resolution: NONE`: the waypoint dials the address itself, with
    no DNS lookup of `<ip>.nip.io` on the data path. Needs Istio 1.28 or newer."""
    tls_origination: bool = False
    """Clients speak plain HTTP; the waypoint sends TLS to port 443 (every port must be HTTP)."""
    tls_credential_name: str | None = None
    """With `tls_origination`: a Secret in the waypoint's namespace whose `ca.crt` signs the server's
    certificate. Default: the system's CAs."""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """Headers the waypoint adds to each request (needs exactly one HTTP port)."""

    def __post_init__(self) -> None:
        if not self.ports:
            raise ValueError("ExternalServiceArgs.ports: declare at least one port")
        if isinstance(self.address, str) and (problem := address_problem(self.address)):
            raise ValueError(f"ExternalServiceArgs.address: {problem}")
        http_ports = [port for port in self.ports if port.is_http]
        if self.tls_origination and len(http_ports) != len(self.ports):
            raise ValueError("ExternalServiceArgs.tls_origination needs every port to be HTTP: the waypoint originates "
                             "TLS for the whole host; declare other ports as a separate service")
        if self.request_headers and len(http_ports) != 1:
            raise ValueError(f"ExternalServiceArgs.request_headers need exactly one HTTP port to route (found {len(http_ports)})")
        if self.tls_credential_name and not self.tls_origination:
            raise ValueError("ExternalServiceArgs.tls_credential_name needs tls_origination")
        if (self.waypoint is None) == (self.egress_gateway is None):
            raise ValueError("ExternalServiceArgs: give the waypoint (ambient) or the egress_gateway (sidecar mode), one of them")
        if self.egress_gateway is not None:
            if len(self.ports) != 1:
                raise ValueError(f"ExternalServiceArgs.ports: in sidecar mode a target has one port, which the egress "
                                 f"gateway tells apart by SNI (got {len(self.ports)}); declare each port as its own service")
            return
        assert self.waypoint is not None
        namespace = self.namespace or self.waypoint.namespace
        if not self.waypoint.admits(namespace):
            raise ValueError(f"ExternalServiceArgs.namespace: waypoint {self.waypoint.namespace}/{self.waypoint.name} binds "
                             f"only ServiceEntries of its own namespace, not {namespace!r}; put the ServiceEntry there, or "
                             "give the gateway route_namespaces=RouteNamespaces.ALL")


class ExternalService(pulumi.ComponentResource):
    """A ServiceEntry behind the egress door, closed until granted, with optional TLS origination
    and request headers at the door. Ambient: bound to the waypoint, guarded from its first moment
    by an allow-nothing policy. Sidecar mode: routed through the egress gateway, whose own
    allow-nothing baseline guards it. Namespaces reach it only through `grant`."""

    host: pulumi.Output[str]
    address: pulumi.Output[str]
    service_entry_name: pulumi.Output[str]
    service_entry_namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ExternalServiceArgs, opts: pulumi.ResourceOptions | None = None):
        service_name = args.service_name or name
        if problem := service_name_problem(service_name):
            raise ValueError(f"ExternalService {name!r}: the ServiceEntry name {service_name!r} {problem}; "
                             "set ExternalServiceArgs.service_name")
        super().__init__(TYPE_TOKEN, name, None, opts)
        door = args.waypoint or args.egress_gateway
        assert door is not None
        self._name = service_name
        self._ports = tuple(args.ports)
        self._namespace = args.namespace or door.namespace
        self._gateway = args.egress_gateway
        host = derived(args.address, host_for_address)
        self._host = host
        if args.waypoint is not None:
            self._ambient(name, args, args.waypoint, host, opts)
        else:
            assert args.egress_gateway is not None
            self._sidecar(name, args, args.egress_gateway, host, opts)

        self.address = pulumi.Output.from_input(args.address)
        self.host = pulumi.Output.from_input(host)
        self.service_entry_name = self.service_entry.metadata.apply(lambda _: service_name)
        self.service_entry_namespace = self.service_entry.metadata.apply(lambda _: self._namespace)
        self.register_outputs({
            "host": self.host, "address": self.address,
            "service_entry_name": self.service_entry_name, "service_entry_namespace": self.service_entry_namespace,
        })

    def _ambient(self, name: str, args: ExternalServiceArgs, waypoint: Waypoint, host: Any,
                 opts: pulumi.ResourceOptions | None) -> None:
        # The baseline exists before the ServiceEntry, so the service is never open, not even for
        # the moment between the two; on destroy the ServiceEntry goes first for the same reason.
        allow_nothing = kubernetes_object(
            f"{name}/allow-nothing", manifests.allow_nothing_policy(self._name, self._namespace), child_options(self, opts))
        self.service_entry = kubernetes_object(
            f"{name}/service-entry",
            manifests.service_entry(
                self._name, self._namespace, host=host,
                addresses=derived(args.address, _pinned) if args.pin_address else None,
                resolution=derived(args.address, _resolution) if args.pin_address and args.ip_passthrough else "DNS",
                ports=self._ports, waypoint=waypoint, tls_origination=args.tls_origination,
            ),
            child_options(self, opts, depends_on=[allow_nothing, waypoint.gateway]),
        )
        after_entry = child_options(self, opts, depends_on=[self.service_entry])
        if args.tls_origination:
            kubernetes_object(f"{name}/tls-origination",
                              manifests.tls_origination_rule(self._name, self._namespace, host,
                                                             credential_name=args.tls_credential_name), after_entry)
        if args.request_headers:
            http_port = next(port for port in self._ports if port.is_http)
            kubernetes_object(
                f"{name}/request-headers",
                manifests.request_header_route(self._name, self._namespace, host=host, port=http_port.number,
                                               headers=tuple(args.request_headers.items())),
                after_entry,
            )

    def _sidecar(self, name: str, args: ExternalServiceArgs, gateway: EgressGatewayRef, host: Any,
                 opts: pulumi.ResourceOptions | None) -> None:
        # The route to the gateway comes last, after the gateway closed everything and the host is
        # known: no sidecar sends the host anywhere before the gateway judges it.
        [port] = self._ports
        exported = manifests.export_to(self._namespace, gateway, args.visible_to)
        after_baseline = child_options(self, opts, depends_on=[gateway.policy])
        self.service_entry = kubernetes_object(
            f"{name}/service-entry",
            manifests.gateway_service_entry(self._name, self._namespace, host=host, port=port, exported_to=exported,
                                            addresses=derived(args.address, _pinned) if args.pin_address else None),
            after_baseline)
        server = kubernetes_object(
            f"{name}/gateway-server",
            manifests.egress_gateway_server(self._name, self._namespace, host=host, port=port, gateway=gateway),
            after_baseline)
        mutual_tls = kubernetes_object(
            f"{name}/gateway-subset",
            manifests.egress_gateway_subset(self._name, host=host, gateway=gateway),
            after_baseline)
        hop = [self.service_entry, server, mutual_tls]
        if args.tls_origination:
            hop.append(kubernetes_object(
                f"{name}/tls-origination",
                manifests.gateway_tls_origination(self._name, self._namespace, host=host, gateway=gateway,
                                                  credential_name=args.tls_credential_name),
                after_baseline))
        kubernetes_object(
            f"{name}/route",
            manifests.egress_route(self._name, self._namespace, host=host, port=port, gateway=gateway, exported_to=exported,
                                   tls_origination=args.tls_origination, request_headers=tuple(args.request_headers.items())),
            child_options(self, opts, depends_on=hop))

    @property
    def name(self) -> str:
        return self._name

    @property
    def ports(self) -> tuple[ServicePort, ...]:
        return self._ports

    @property
    def egress_gateway(self) -> EgressGatewayRef | None:
        """The egress gateway it is routed through, in sidecar mode."""
        return self._gateway

    @property
    def namespace(self) -> str:
        """Where the ServiceEntry and the policies that target it live."""
        return self._namespace

    def grant(
        self, grantee: Grantee, accesses: Sequence[Access] = (), *, resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> AccessGrant:
        accesses = tuple(accesses) or (Access(target=self),)
        for access in accesses:
            if access.target is not self:
                raise ValueError(f"{self._name}.grant: an access to {access.target.name} cannot be granted on {self._name}")
            access.check_grantable_to(grantee.namespace)
        def identities(access: Access) -> Sequence[str]:
            return access.service_accounts if access.service_accounts is not None else grantee.service_accounts

        if self._gateway is None:
            rules = [manifests.access_rule(grantee.namespace, ports=access.ports(), methods=access.methods, paths=access.paths,
                                           service_accounts=identities(access), trust_domain=grantee.trust_domain)
                     for access in accesses]
            policy_manifest = manifests.grant_policy(self._name, self._namespace, source_namespace=grantee.namespace,
                                                     rules=rules)
            visible_host = None
        else:
            rules = [manifests.gateway_access_rule(grantee.namespace, host=self._host, methods=access.methods,
                                                   paths=access.paths, service_accounts=identities(access),
                                                   trust_domain=grantee.trust_domain)
                     for access in accesses]
            policy_manifest = manifests.gateway_grant_policy(self._name, self._gateway, source_namespace=grantee.namespace,
                                                             rules=rules)
            visible_host = derived(self._host, lambda host: f"{self._namespace}/{host}")
        given = opts or pulumi.ResourceOptions()
        # After the ServiceEntry it targets, so deleted before it; after the grantee's enrolment,
        # so the rule never names a namespace the mesh does not yet enforce.
        policy = kubernetes_object(
            resource_name, policy_manifest,
            pulumi.ResourceOptions.merge(given, pulumi.ResourceOptions(depends_on=[
                resource for resource in (self.service_entry, grantee.enrolment) if resource is not None])),
        )
        return AccessGrant(grantee=grantee, target=self, accesses=accesses, policy=policy,
                           policy_name=policy_manifest["metadata"]["name"], rules=rules, visible_host=visible_host)


def _pinned(address: str) -> list[str] | None:
    # ztunnel sends a connection to a ServiceEntry address through the waypoint; without this, a
    # client dialling the raw IP would pass straight through.
    return [address] if is_ipv4(address) else None


def _resolution(address: str) -> str:
    # From Istio 1.28 an egress waypoint passes a `resolution: NONE` ServiceEntry through to the
    # address the client dialled (release note 57656): the pinned IP, found without DNS.
    return "NONE" if is_ipv4(address) else "DNS"
