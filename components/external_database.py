"""ExternalDatabase: PostgreSQL as an ExternalService, with an optional in-cluster stand-in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from . import manifests
from ._kubernetes import child_options, kubernetes_object, render
from .config import DEFAULT_DATABASE_PORT, ServicePort
from .external_service import ExternalService, ExternalServiceArgs

TYPE_TOKEN = "ambient-egress:index:ExternalDatabase"


@dataclass(frozen=True)
class ExternalDatabaseArgs:
    waypoint_name: pulumi.Input[str]
    """The egress waypoint the ServiceEntry binds to (`EgressGateway.waypoint_name`)."""
    waypoint_namespace: pulumi.Input[str]
    """The waypoint's namespace (`EgressGateway.namespace`)."""
    port: int = DEFAULT_DATABASE_PORT
    address: str | None = None
    """An existing database's IPv4 address or DNS name. Default: a PostgreSQL stand-in is deployed."""
    stand_in_namespace: pulumi.Input[str] | None = None
    """Where the stand-in runs, outside the mesh. Required when `address` is unset."""
    service_entry_namespace: pulumi.Input[str] | None = None
    """Where the ServiceEntry and its policies live. Default: the waypoint's namespace."""
    pin_address: bool = True
    """Put an IP address on the ServiceEntry so raw-IP connections also meet the waypoint."""
    stand_in_ingress_policy: bool = True
    """Let the stand-in accept connections from the egress waypoint's pods only."""
    image: str = manifests.POSTGRES_IMAGE


class ExternalDatabase(pulumi.ComponentResource):
    """A PostgreSQL ExternalService on one TCP port and, with no `address`, a stand-in behind a
    LoadBalancer whose address becomes the host."""

    service: ExternalService
    """The ServiceEntry side, which grants target."""
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
        super().__init__(TYPE_TOKEN, name, None, opts)
        if args.address is None:
            if args.stand_in_namespace is None:
                raise ValueError(f"ExternalDatabase {name}: set address, or stand_in_namespace for a stand-in")
            address = self._stand_in(name, args, opts)
        else:
            address = args.address
            self.username = self.password = None

        self.service = ExternalService(name, ExternalServiceArgs(
            address=address,
            ports=[manifests.postgres_port(args.port)],
            waypoint_name=args.waypoint_name,
            waypoint_namespace=args.waypoint_namespace,
            service_entry_namespace=args.service_entry_namespace,
            pin_address=args.pin_address,
        ), child_options(self, opts))
        self.host = self.service.host
        self.address = self.service.address
        self.port = pulumi.Output.from_input(args.port)
        self.register_outputs({
            "host": self.host, "address": self.address, "port": self.port,
            **({"username": self.username, "password": self.password} if self.password is not None else {}),
        })

    @property
    def service_name(self) -> str:
        return self.service.service_name

    @property
    def ports(self) -> tuple[ServicePort, ...]:
        return self.service.ports

    @property
    def namespace(self) -> pulumi.Input[str]:
        return self.service.namespace

    @property
    def service_entry(self) -> pulumi.CustomResource:
        return self.service.service_entry

    @property
    def service_entry_name(self) -> pulumi.Output[str]:
        return self.service.service_entry_name

    @property
    def service_entry_namespace(self) -> pulumi.Output[str]:
        return self.service.service_entry_namespace

    def _stand_in(self, name: str, args: ExternalDatabaseArgs, opts: pulumi.ResourceOptions | None) -> pulumi.Output[str]:
        namespace = args.stand_in_namespace
        password = random.RandomPassword(f"{name}-password", length=24, special=False, opts=pulumi.ResourceOptions(parent=self))
        secret_password = pulumi.Output.secret(password.result)
        secret = kubernetes_object(
            f"{name}-credentials", manifests.stand_in_secret(name, namespace, secret_password), child_options(self, opts)
        )
        kubernetes_object(
            f"{name}-deployment",
            render(lambda ns: manifests.stand_in_deployment(name, ns, image=args.image), namespace),
            child_options(self, opts, secret), api_version="apps/v1", kind="Deployment",
        )
        if args.stand_in_ingress_policy:
            kubernetes_object(
                f"{name}-ingress-policy",
                render(
                    lambda ns, waypoint_name, waypoint_namespace: manifests.stand_in_ingress_policy(
                        name, ns, manifests.Waypoint(waypoint_name, waypoint_namespace)),
                    namespace, args.waypoint_name, args.waypoint_namespace,
                ),
                child_options(self, opts), api_version="networking.k8s.io/v1", kind="NetworkPolicy",
            )
        service = kubernetes_object(
            f"{name}-service",
            render(lambda ns: manifests.stand_in_service(name, ns, port=args.port), namespace),
            child_options(self, opts), api_version="v1", kind="Service",
        )
        self.username = pulumi.Output.from_input(manifests.POSTGRES_USER)
        self.password = secret_password
        return pulumi.Output.all(service.metadata, service.status).apply(lambda values: _load_balancer_address(*values))


def _load_balancer_address(metadata, status) -> str:
    address = manifests.address_from_load_balancer(status)
    if address is None:
        raise ValueError(
            f"LoadBalancer Service {metadata['namespace']}/{metadata['name']} reported no ingress address; "
            "the cluster needs a LoadBalancer implementation (a cloud provider, MetalLB or cloud-provider-kind), "
            "or set the database's `address` to an existing database"
        )
    return address
