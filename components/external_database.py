"""ExternalDatabase: one database outside the mesh, registered behind the egress waypoint and closed by default."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from . import manifests
from ._kubernetes import kubernetes_object
from .config import DEFAULT_DATABASE_PORT

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
    """A ServiceEntry bound to the egress waypoint, an allow-nothing baseline policy and, with no
    `address`, a PostgreSQL stand-in behind a LoadBalancer whose address becomes the host."""

    database_name: str
    host: pulumi.Output[str]
    """`<ip>.nip.io` for an IPv4 address; a DNS name as it is."""
    address: pulumi.Output[str]
    """The address the host was made from: the LoadBalancer's ingress or `address`."""
    port: pulumi.Output[int]
    service_entry_name: pulumi.Output[str]
    service_entry_namespace: pulumi.Output[str]
    username: pulumi.Output[str] | None
    """The stand-in's user; None for an existing database."""
    password: pulumi.Output[str] | None
    """The stand-in's generated password, a Pulumi secret; None for an existing database."""

    def __init__(self, name: str, args: ExternalDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.database_name = name
        child = pulumi.ResourceOptions(parent=self)
        se_namespace = pulumi.Output.from_input(
            args.service_entry_namespace if args.service_entry_namespace is not None else args.waypoint_namespace
        )

        if args.address is None:
            if args.stand_in_namespace is None:
                raise ValueError(f"ExternalDatabase {name}: set address, or stand_in_namespace for a stand-in")
            address = self._stand_in(name, args)
        else:
            address = pulumi.Output.from_input(args.address)
            self.username = self.password = None

        # The baseline exists before the ServiceEntry, so the database is never open, not even for
        # the moment between the two; on destroy the ServiceEntry goes first for the same reason.
        allow_nothing = kubernetes_object(
            f"{name}-allow-nothing",
            se_namespace.apply(lambda namespace: manifests.allow_nothing_policy(name, namespace)),
            child, api_version="security.istio.io/v1", kind="AuthorizationPolicy",
        )
        service_entry = kubernetes_object(
            f"{name}-service-entry",
            pulumi.Output.all(address, se_namespace, args.waypoint_name, args.waypoint_namespace).apply(
                lambda values: manifests.service_entry(
                    name, values[1], address=values[0], port=args.port,
                    waypoint=manifests.Waypoint(values[2], values[3]), pin_address=args.pin_address,
                )
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[allow_nothing]),
            api_version="networking.istio.io/v1", kind="ServiceEntry",
        )

        self.address = address
        self.host = address.apply(manifests.host_for_address)
        self.port = pulumi.Output.from_input(args.port)
        self.service_entry_name = service_entry.metadata.apply(lambda metadata: metadata["name"])
        self.service_entry_namespace = service_entry.metadata.apply(lambda metadata: metadata["namespace"])
        self.register_outputs({
            "host": self.host, "address": self.address, "port": self.port,
            "service_entry_name": self.service_entry_name, "service_entry_namespace": self.service_entry_namespace,
            **({"username": self.username, "password": self.password} if self.password is not None else {}),
        })

    def _stand_in(self, name: str, args: ExternalDatabaseArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        namespace = pulumi.Output.from_input(args.stand_in_namespace)
        password = random.RandomPassword(f"{name}-password", length=24, special=False, opts=child)
        secret_password = pulumi.Output.secret(password.result)
        secret = kubernetes_object(
            f"{name}-credentials", manifests.stand_in_secret(name, namespace, secret_password), child
        )
        kubernetes_object(
            f"{name}-deployment",
            namespace.apply(lambda ns: manifests.stand_in_deployment(name, ns, image=args.image)),
            pulumi.ResourceOptions(parent=self, depends_on=[secret]), api_version="apps/v1", kind="Deployment",
        )
        if args.stand_in_ingress_policy:
            kubernetes_object(
                f"{name}-ingress-policy",
                pulumi.Output.all(namespace, args.waypoint_name, args.waypoint_namespace).apply(
                    lambda values: manifests.stand_in_ingress_policy(name, values[0], manifests.Waypoint(values[1], values[2]))
                ),
                child, api_version="networking.k8s.io/v1", kind="NetworkPolicy",
            )
        service = kubernetes_object(
            f"{name}-service",
            namespace.apply(lambda ns: manifests.stand_in_service(name, ns, port=args.port)),
            child, api_version="v1", kind="Service",
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
