"""The grant primitive: "this grantee may reach that target", written on the target.

As with AWS CDK's `grant*`, the method lives on the resource being reached: `target.grant(grantee)`
writes the target's half (an ALLOW AuthorizationPolicy beside its ServiceEntry, naming the
grantee's namespace or identities) and returns an `AccessGrant` recording both halves. Every
target (an `ExternalService`, an `ExternalDatabase`) offers the same `EgressTarget` interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi

from analysis.matching import path_pattern_problem

from .names import dns_label_problem
from .resources import KubernetesObject
from .values import DEFAULT_TRUST_DOMAIN, EgressGatewayRef, ServicePort

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


@dataclass(frozen=True, kw_only=True, eq=False)
class Grantee:
    """Who is granted: a client namespace, or only some workload identities in it."""

    namespace: str
    service_accounts: tuple[str, ...] = ()
    """Grant only these identities (`<trust domain>/ns/<namespace>/sa/<account>`). Empty: the whole namespace."""
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    enrolment: pulumi.Resource | None = None
    """The object that enrols the namespace in ambient (a Namespace or its label patch), when the
    stack manages it: without enrolment nothing on the namespace's traffic is enforced."""

    def __post_init__(self) -> None:
        for value, what in ((self.namespace, "namespace"), *((account, "service account") for account in self.service_accounts)):
            problem = dns_label_problem(value)
            if problem:
                raise ValueError(f"Grantee {what} {value!r}: {problem}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Access:
    """Access to one target: any request, or only some HTTP requests, by the grantee or some of its identities."""

    target: EgressTarget
    methods: tuple[str, ...] = ()
    """HTTP methods allowed, e.g. ("GET",). Default: any. HTTP ports only."""
    paths: tuple[str, ...] = ()
    """Istio path forms allowed: `/get`, `/api/*`, `*.json`, `/v1/{*}/items`. Default: any. HTTP ports only."""
    service_accounts: tuple[str, ...] | None = None
    """Only these service accounts. Default: the grantee's own."""

    def __post_init__(self) -> None:
        where = f"access to {self.target.name}"
        for method in self.methods:
            if method not in HTTP_METHODS:
                raise ValueError(f"{where}: method {method!r} is not one of {', '.join(HTTP_METHODS)}")
        for path in self.paths:
            problem = path_pattern_problem(path)
            if problem:
                raise ValueError(f"{where}: path {path!r} {problem}")

    def check_grantable_to(self, namespace: str) -> None:
        """Refuse, naming both sides, an access the target cannot enforce."""
        if self.is_limited and not any(port.is_http for port in self.target.ports):
            raise ValueError(f"grant of {self.target.name} to namespace {namespace!r}: methods and paths need an HTTP "
                             f"port, and {self.target.name} has none; TCP policies may use only ports, namespaces and "
                             "principals")

    @property
    def is_limited(self) -> bool:
        return bool(self.methods or self.paths)

    def ports(self) -> tuple[int, ...]:
        """Limited access opens the HTTP ports only: there, and only there, methods and paths are seen."""
        return tuple(port.number for port in self.target.ports if port.is_http or not self.is_limited)


@dataclass(frozen=True, eq=False)
class AccessGrant:
    """Both halves of one grant: the grantee's side (its namespace and identities, and the object
    that enrols it) and the target's side (the ALLOW policy beside the ServiceEntry)."""

    grantee: Grantee
    target: EgressTarget
    accesses: tuple[Access, ...]
    policy: KubernetesObject
    policy_name: str
    """The AuthorizationPolicy's Kubernetes name, in the target's namespace."""
    rules: list[dict[str, object]] = field(repr=False)
    visible_host: object = None
    """Sidecar mode: the `<namespace>/<host>` the grantee's `Sidecar` resource must list to see
    the target (a Pulumi Output for a stand-in's host); None in ambient mode."""


def identities_in_order(service_accounts: Sequence[str], per_access: Iterable[Sequence[str] | None]) -> tuple[str, ...]:
    """Every service account a grant names, once each, in the order first named: the grant's own,
    then each access's. A grant's test client runs as the first."""
    named = [*service_accounts, *(account for accounts in per_access for account in accounts or ())]
    return tuple(dict.fromkeys(named))


class EgressTarget(Protocol):
    """Anything a namespace can be granted: a ServiceEntry bound to the egress waypoint."""

    @property
    def name(self) -> str:
        """The ServiceEntry's name, which names the target in policies and the access matrix."""

    @property
    def ports(self) -> tuple[ServicePort, ...]: ...

    @property
    def egress_gateway(self) -> EgressGatewayRef | None:
        """The egress gateway it is routed through in sidecar mode; None behind a waypoint."""

    def grant(
        self, grantee: Grantee, accesses: Sequence[Access] = (), *, resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> AccessGrant:
        """Allow `grantee` to reach this target, as `accesses` narrow it (none: any request by
        the grantee's identities). `resource_name` names the policy resource in Pulumi."""
