"""ExternalService: any service outside the mesh, behind the egress waypoint and closed by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from . import manifests
from .grants import Access, AccessGrant, Grantee
from .names import address_problem, service_name_problem
from .resources import child_options, derived, kubernetes_object
from .values import ServicePort, Waypoint, host_for_address, is_ipv4

TYPE_TOKEN = "ambient-egress:index:ExternalService"


@dataclass(frozen=True, kw_only=True)
class ExternalServiceArgs:
    address: pulumi.Input[str]
    """A DNS name, used as the host as it is, or an IPv4 address, whose host becomes `<ip>.nip.io`."""
    ports: Sequence[ServicePort]
    waypoint: Waypoint
    """The egress waypoint the ServiceEntry binds to (`EgressGateway.waypoint`)."""
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
        namespace = self.namespace or self.waypoint.namespace
        if not self.waypoint.admits(namespace):
            raise ValueError(f"ExternalServiceArgs.namespace: waypoint {self.waypoint.namespace}/{self.waypoint.name} binds "
                             f"only ServiceEntries of its own namespace, not {namespace!r}; put the ServiceEntry there, or "
                             "give the gateway route_namespaces=RouteNamespaces.ALL")


class ExternalService(pulumi.ComponentResource):
    """A ServiceEntry bound to the egress waypoint, guarded from its first moment by an
    allow-nothing policy, with optional TLS origination and request headers at the waypoint.
    Namespaces reach it only through `grant`."""

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
        self._name = service_name
        self._ports = tuple(args.ports)
        self._namespace = args.namespace or args.waypoint.namespace
        self._opts = opts
        host = derived(args.address, host_for_address)

        # The baseline exists before the ServiceEntry, so the service is never open, not even for
        # the moment between the two; on destroy the ServiceEntry goes first for the same reason.
        allow_nothing = kubernetes_object(
            f"{name}/allow-nothing", manifests.allow_nothing_policy(service_name, self._namespace), child_options(self, opts))
        self.service_entry = kubernetes_object(
            f"{name}/service-entry",
            manifests.service_entry(
                service_name, self._namespace, host=host,
                addresses=derived(args.address, _pinned) if args.pin_address else None,
                resolution=derived(args.address, _resolution) if args.pin_address and args.ip_passthrough else "DNS",
                ports=self._ports, waypoint=args.waypoint, tls_origination=args.tls_origination,
            ),
            child_options(self, opts, depends_on=[allow_nothing, args.waypoint.gateway]),
        )
        after_entry = child_options(self, opts, depends_on=[self.service_entry])
        if args.tls_origination:
            kubernetes_object(f"{name}/tls-origination",
                              manifests.tls_origination_rule(service_name, self._namespace, host,
                                                             credential_name=args.tls_credential_name), after_entry)
        if args.request_headers:
            http_port = next(port for port in self._ports if port.is_http)
            kubernetes_object(
                f"{name}/request-headers",
                manifests.request_header_route(service_name, self._namespace, host=host, port=http_port.number,
                                               headers=tuple(args.request_headers.items())),
                after_entry,
            )

        self.address = pulumi.Output.from_input(args.address)
        self.host = pulumi.Output.from_input(host)
        self.service_entry_name = self.service_entry.metadata.apply(lambda _: service_name)
        self.service_entry_namespace = self.service_entry.metadata.apply(lambda _: self._namespace)
        self.register_outputs({
            "host": self.host, "address": self.address,
            "service_entry_name": self.service_entry_name, "service_entry_namespace": self.service_entry_namespace,
        })

    @property
    def name(self) -> str:
        return self._name

    @property
    def ports(self) -> tuple[ServicePort, ...]:
        return self._ports

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
        rules = [
            manifests.access_rule(
                grantee.namespace, ports=access.ports(), methods=access.methods, paths=access.paths,
                service_accounts=access.service_accounts if access.service_accounts is not None else grantee.service_accounts,
                trust_domain=grantee.trust_domain,
            )
            for access in accesses
        ]
        policy_manifest = manifests.grant_policy(self._name, self._namespace, source_namespace=grantee.namespace, rules=rules)
        given = opts or pulumi.ResourceOptions()
        # After the ServiceEntry it targets, so deleted before it; after the grantee's enrolment,
        # so the rule never names a namespace the mesh does not yet enforce.
        policy = kubernetes_object(
            resource_name, policy_manifest,
            pulumi.ResourceOptions.merge(given, pulumi.ResourceOptions(depends_on=[
                resource for resource in (self.service_entry, grantee.enrolment) if resource is not None])),
        )
        return AccessGrant(grantee=grantee, target=self, accesses=accesses, policy=policy,
                           policy_name=policy_manifest["metadata"]["name"], rules=rules)


def _pinned(address: str) -> list[str] | None:
    # ztunnel sends a connection to a ServiceEntry address through the waypoint; without this, a
    # client dialling the raw IP would pass straight through.
    return [address] if is_ipv4(address) else None


def _resolution(address: str) -> str:
    # From Istio 1.28 an egress waypoint passes a `resolution: NONE` ServiceEntry through to the
    # address the client dialled (release note 57656): the pinned IP, found without DNS.
    return "NONE" if is_ipv4(address) else "DNS"
