"""ExternalDatabase: a database as an ExternalService, with an optional PostgreSQL stand-in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import manifests
from .external_service import ExternalService, ExternalServiceArgs
from .grants import Access, AccessGrant, Grantee
from .names import address_problem, service_name_problem
from .resources import child_options, kubernetes_object
from .values import DEFAULT_DATABASE_PORT, POSTGRES_PORT_NAME, EgressGatewayRef, ServicePort, Waypoint, database_port

TYPE_TOKEN = "ambient-egress:index:ExternalDatabase"
DEFAULT_LOAD_BALANCER_TIMEOUT = "5m"


@dataclass(frozen=True, kw_only=True)
class ExternalDatabaseArgs:
    waypoint: Waypoint | None = None
    """Ambient: the egress waypoint the ServiceEntry binds to (`EgressGateway.waypoint`)."""
    egress_gateway: EgressGatewayRef | None = None
    """Sidecar mode instead: the Istio egress gateway (`SidecarEgressGateway.gateway`)."""
    visible_to: Sequence[str] = ()
    """Sidecar mode: the namespaces whose sidecars may see the database (the granted ones)."""
    port: int = DEFAULT_DATABASE_PORT
    address: str | None = None
    """An existing database's IPv4 address or DNS name. Default: a PostgreSQL stand-in is deployed."""
    service_name: str | None = None
    """The ServiceEntry's (and the stand-in's) name. Default: the component's resource name."""
    stand_in_namespace: str | None = None
    """Where the stand-in runs, outside the mesh. Required when `address` is unset."""
    namespace: str | None = None
    """Where the ServiceEntry and its policies live. Default: the waypoint's namespace."""
    pin_address: bool = True
    """Put an IP address on the ServiceEntry so raw-IP connections also meet the waypoint."""
    ip_passthrough: bool = False
    """For a pinned IPv4 address, `resolution: NONE` (Istio 1.28+): no DNS on the data path."""
    stand_in_ingress_policy: bool = True
    """Let the stand-in accept connections from the egress waypoint's pods only."""
    image: str = manifests.POSTGRES_IMAGE
    load_balancer_timeout: str = DEFAULT_LOAD_BALANCER_TIMEOUT
    """How long `pulumi up` waits for the stand-in's LoadBalancer address before it fails."""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"ExternalDatabaseArgs.port: must be in 1..65535 (got {self.port})")
        if self.address is None and self.stand_in_namespace is None:
            raise ValueError("ExternalDatabaseArgs: set address for an existing database, or stand_in_namespace "
                             "for a PostgreSQL stand-in")
        if self.address is not None and (problem := address_problem(self.address)):
            raise ValueError(f"ExternalDatabaseArgs.address: {problem}")
        if (self.waypoint is None) == (self.egress_gateway is None):
            raise ValueError(
                "ExternalDatabaseArgs: give the waypoint (ambient) or the egress_gateway (sidecar mode), one of them")

    @property
    def door(self) -> Waypoint | EgressGatewayRef:
        door = self.waypoint or self.egress_gateway
        assert door is not None
        return door

    @property
    def is_stand_in(self) -> bool:
        return self.address is None


class ExternalDatabase(pulumi.ComponentResource):
    """A database ExternalService on one TCP port and, with no `address`, a PostgreSQL stand-in
    behind a LoadBalancer whose address becomes the host."""

    service: ExternalService
    """The ServiceEntry side."""
    host: pulumi.Output[str]
    """`<ip>.nip.io` for an IPv4 address; a DNS name as it is."""
    address: pulumi.Output[str]
    """The address the host was made from: the LoadBalancer's ingress or `address`."""
    port: pulumi.Output[int]
    username: pulumi.Output[str] | None
    """The stand-in's user; None for an existing database."""
    password: pulumi.Output[str] | None
    """The stand-in's generated password, a Pulumi secret; None for an existing database."""

    def __init__(self, name: str, args: ExternalDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        service_name = args.service_name or name
        if problem := service_name_problem(service_name):
            raise ValueError(f"ExternalDatabase {name!r}: the database name {service_name!r} {problem}; "
                             "set ExternalDatabaseArgs.service_name")
        super().__init__(TYPE_TOKEN, name, None, opts)
        if args.is_stand_in:
            address: pulumi.Input[str] = self._stand_in(name, service_name, args, opts)
            port = ServicePort.tcp(args.port, name=POSTGRES_PORT_NAME)
        else:
            assert args.address is not None
            address = args.address
            port = database_port(args.port)
            self.username = self.password = None

        self.service = ExternalService(f"{name}/external-service", ExternalServiceArgs(
            address=address, ports=[port], waypoint=args.waypoint, egress_gateway=args.egress_gateway,
            visible_to=args.visible_to, service_name=service_name,
            namespace=args.namespace, pin_address=args.pin_address, ip_passthrough=args.ip_passthrough,
        ), child_options(self, opts))
        self.host = self.service.host
        self.address = self.service.address
        self.port = pulumi.Output.from_input(args.port)
        self.register_outputs({
            "host": self.host, "address": self.address, "port": self.port,
            **({"username": self.username, "password": self.password} if self.password is not None else {}),
        })

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def ports(self) -> tuple[ServicePort, ...]:
        return self.service.ports

    @property
    def egress_gateway(self) -> EgressGatewayRef | None:
        return self.service.egress_gateway

    def grant(
        self, grantee: Grantee, accesses: Sequence[Access] = (), *, resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> AccessGrant:
        return self.service.grant(grantee, [Access(target=self.service, methods=access.methods, paths=access.paths,
                                                   service_accounts=access.service_accounts) for access in accesses],
                                  resource_name=resource_name, opts=opts)

    def _stand_in(self, name: str, service_name: str, args: ExternalDatabaseArgs,
                  opts: pulumi.ResourceOptions | None) -> pulumi.Output[str]:
        namespace = args.stand_in_namespace
        assert namespace is not None
        password = random.RandomPassword(f"{name}/password", length=24, special=False, opts=child_options(self, opts))
        secret_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        secret = kubernetes_object(
            f"{name}/credentials", manifests.stand_in_secret(service_name, namespace, secret_password), child_options(self, opts))
        # The fence exists before anything listens: the stand-in never accepts a client that
        # bypasses the waypoint, not even while it starts.
        fence = (
            kubernetes_object(
                f"{name}/ingress-policy", manifests.stand_in_ingress_policy(service_name, namespace, args.door),
                child_options(self, opts))
            if args.stand_in_ingress_policy else None
        )
        kubernetes_object(
            f"{name}/deployment", manifests.stand_in_deployment(service_name, namespace, image=args.image),
            child_options(self, opts, depends_on=[secret, fence]))
        service = kubernetes_object(
            f"{name}/load-balancer", manifests.stand_in_service(service_name, namespace, port=args.port),
            child_options(self, opts, depends_on=[fence],
                          custom_timeouts=pulumi.CustomTimeouts(create=args.load_balancer_timeout,
                                                                update=args.load_balancer_timeout)))
        # A v1 Service registers as the typed class, whose status carries the load balancer's address.
        assert isinstance(service, k8s.core.v1.Service)
        self.username = pulumi.Output.from_input(manifests.POSTGRES_USER)
        self.password = secret_password
        return pulumi.Output.all(service.metadata, service.status).apply(lambda values: _load_balancer_address(*values))


def address_from_load_balancer(status: Mapping[str, Any] | None) -> str | None:
    """The first ingress of a LoadBalancer Service status: its IP, or the hostname some clouds report."""
    status = status or {}
    # The Pulumi SDK hands typed outputs over with snake_case keys; kubectl JSON uses camelCase.
    load_balancer = status.get("load_balancer") or status.get("loadBalancer") or {}
    for entry in load_balancer.get("ingress") or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return str(address)
    return None


def _load_balancer_address(metadata: Mapping[str, Any], status: Mapping[str, Any] | None) -> str:
    address = address_from_load_balancer(status)
    if address is None:
        raise ValueError(
            f"LoadBalancer Service {metadata['namespace']}/{metadata['name']} reported no ingress address; "
            "the cluster needs a LoadBalancer implementation (a cloud provider, MetalLB or cloud-provider-kind), "
            "or set the database's `address` to an existing database"
        )
    return address
