"""Value types and defaults the components take: plain, frozen, validated where they are built.

Nothing here knows about Pulumi's engine or the program's stack config; the config package builds
these from what a stack file says, and another program can build them directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pulumi

DEFAULT_EGRESS_NAMESPACE = "istio-egress"
DEFAULT_DATABASE_NAMESPACE = "db"
DEFAULT_WAYPOINT_NAME = "waypoint"
DEFAULT_DATABASE_PORT = 5432
DEFAULT_TRUST_DOMAIN = "cluster.local"
DEFAULT_ISTIO_NAMESPACE = "istio-system"

RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", "istio-system"})
"""Namespaces every cluster has and no stack may own: creating them fails, deleting them is a disaster."""
SYSTEM_NAMESPACES = RESERVED_NAMESPACES - {"default"}
"""Reserved namespaces whose workloads must never be enrolled as egress clients."""


class Protocol(StrEnum):
    """What the waypoint sees on a port, and so which AuthorizationPolicy fields can apply there."""

    TCP = "TCP"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TLS = "TLS"


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class ServicePort:
    """One port of an external service, as its ServiceEntry declares it."""

    number: int
    protocol: Protocol = Protocol.TCP
    name: str = ""
    """The ServiceEntry port name. Default: `<protocol>-<number>` in lowercase."""

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 65535:
            raise ValueError(f"a port number must be in 1..65535 (got {self.number})")
        object.__setattr__(self, "protocol", Protocol(self.protocol))

    @classmethod
    def tcp(cls, number: int, *, name: str = "") -> ServicePort:
        return cls(number=number, protocol=Protocol.TCP, name=name)

    @classmethod
    def http(cls, number: int, *, name: str = "") -> ServicePort:
        return cls(number=number, protocol=Protocol.HTTP, name=name)

    @classmethod
    def tls(cls, number: int, *, name: str = "") -> ServicePort:
        return cls(number=number, protocol=Protocol.TLS, name=name)

    @property
    def port_name(self) -> str:
        return self.name or f"{self.protocol.lower()}-{self.number}"

    @property
    def is_http(self) -> bool:
        return self.protocol is Protocol.HTTP


# Port names by the engine that listens on a well-known port, so a ServiceEntry reads like the
# database it stands for (`tcp-mysql` on 3306, not `tcp-postgres`).
_DATABASE_ENGINES = {
    1433: "mssql", 1521: "oracle", 3306: "mysql", 5432: "postgres", 6379: "redis", 9042: "cassandra",
    27017: "mongodb",
}
POSTGRES_PORT_NAME = "tcp-postgres"


def database_port(number: int, *, engine: str | None = None) -> ServicePort:
    """A database's TCP port, named after its engine: given, or known from the port number."""
    engine = engine or _DATABASE_ENGINES.get(number)
    return ServicePort.tcp(number, name=f"tcp-{engine}" if engine else "")


class RouteNamespaces(StrEnum):
    """Which namespaces' ServiceEntries the waypoint accepts (its HBONE listener's `allowedRoutes`)."""

    SAME = "Same"
    """Only its own: a ServiceEntry elsewhere is not bound (status AttachmentDenied)."""
    ALL = "All"


@dataclass(frozen=True, kw_only=True, eq=False)
class Waypoint:
    """The egress waypoint ServiceEntries bind to, as one value.

    `gateway` is the Gateway resource when this stack creates it: a ServiceEntry is created only
    after it, because until the waypoint has an address istiod does not bind the ServiceEntry and
    ztunnel sends its traffic straight out. A waypoint managed elsewhere has none, and then its
    readiness is the caller's to ensure.
    """

    name: str
    namespace: str
    route_namespaces: RouteNamespaces = RouteNamespaces.SAME
    gateway: pulumi.Resource | None = None

    def admits(self, namespace: str) -> bool:
        """Whether a ServiceEntry in `namespace` can bind to this waypoint."""
        return self.route_namespaces is RouteNamespaces.ALL or namespace == self.namespace


def ipv4_network(text: str) -> str:
    """An IPv4 CIDR in its canonical form; a bare address is the /32 of it. ValueError names the fix."""
    candidate = text if "/" in text else f"{text}/32"
    try:
        return str(ipaddress.IPv4Network(candidate, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.IPv4Network(candidate, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address or CIDR, e.g. 10.96.0.1 or 10.0.0.0/8") from None
    raise ValueError(f"{text!r} has host bits set; did you mean {str(loose)!r}?")


class Dataplane(StrEnum):
    """How the mesh carries a client's traffic to the egress door."""

    AMBIENT = "ambient"
    """ztunnel, to the egress waypoint over HBONE."""
    SIDECAR = "sidecar"
    """Each pod's Envoy sidecar, to an Istio egress gateway over mutual TLS."""


DEFAULT_EGRESS_GATEWAY_SELECTOR = {"istio": "egressgateway"}


@dataclass(frozen=True, kw_only=True, eq=False)
class EgressGatewayRef:
    """An existing Istio egress gateway (sidecar mode): the door sidecars send granted traffic to.

    `policy` is the gateway's allow-nothing baseline when this stack manages the gateway's
    authorization: targets are opened only after it exists.
    """

    namespace: str = DEFAULT_ISTIO_NAMESPACE
    service: str = "istio-egressgateway"
    selector: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_EGRESS_GATEWAY_SELECTOR))
    port: int = 443
    """The gateway port sidecars reach it on, over mutual TLS; each target is told apart by its SNI."""
    policy: pulumi.Resource | None = None

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


def host_for_address(address: str) -> str:
    """An IPv4 address becomes `<ip>.nip.io`, distinct from any in-cluster name; a DNS name stays."""
    return f"{address}.nip.io" if is_ipv4(address) else address


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """A workload identity as an AuthorizationPolicy names it (istiod adds `spiffe://`)."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"
