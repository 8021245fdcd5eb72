"""The clients of the egress waypoint: the rows of the access matrix.

A client is a namespace, `ns`, or one workload identity in it, `ns/sa/<service account>`. The bare
`ns` stands for a workload running as the namespace's `default` service account, which is what a
pod gets without `serviceAccountName`: the identity of any workload no policy singles out.
"""

from __future__ import annotations

from collections.abc import Iterator

from .attachment import policies
from .binding import asks_for_waypoint
from .manifests import GATEWAY, NAMESPACE, SERVICE_ENTRY, MeshIndex
from .mesh import Enrollment, enrollment, is_waypoint
from .policy import DEFAULT_TRUST_DOMAIN, Policy, Principal
from .workloads import DEFAULT_SERVICE_ACCOUNT

# As in a principal's `ns/<ns>/sa/<sa>`.
_SERVICE_ACCOUNT_INFIX = "/sa/"


def client_name(namespace: str, service_account: str) -> str:
    """The row of one workload identity, as a principal names it: `<ns>/sa/<service account>`."""
    return f"{namespace}{_SERVICE_ACCOUNT_INFIX}{service_account}"


def client_identity(client: str) -> tuple[str, str | None]:
    """(namespace, service account) of a row; None for the bare namespace row."""
    namespace, infix, service_account = client.partition(_SERVICE_ACCOUNT_INFIX)
    return namespace, service_account if infix else None


def running_as(client: str) -> tuple[str, str]:
    """(namespace, service account) a row's workload runs as: the bare namespace runs as `default`."""
    namespace, service_account = client_identity(client)
    return namespace, service_account or DEFAULT_SERVICE_ACCOUNT


def client_namespaces(index: MeshIndex) -> tuple[str, ...]:
    """Namespaces an ALLOW or DENY policy names as a source, plus every ambient namespace and every
    one that runs sidecars, except the egress machinery: the namespaces that host a waypoint or
    ServiceEntries that ask for one. A namespace whose ServiceEntries ask for none (a tenant's own,
    say) stays a client."""

    def build() -> tuple[str, ...]:
        named = {namespace for policy in _deciding_policies(index) for namespace in policy.source_namespaces()}
        meshed = (Enrollment.AMBIENT, Enrollment.SIDECAR)
        ambient = {ns.name for ns in index.all(NAMESPACE) if enrollment(index, ns.name) in meshed}
        machinery = {gateway.namespace for gateway in index.all(GATEWAY) if is_waypoint(gateway)}
        machinery |= {entry.namespace for entry in index.all(SERVICE_ENTRY) if asks_for_waypoint(index, entry)}
        return tuple(sorted((named | ambient) - machinery))

    return index.derived("client namespaces", build)


def default_clients(index: MeshIndex) -> tuple[str, ...]:
    """Every client namespace, and beside it `ns/sa/<name>` for each service account an ALLOW or DENY
    policy names in a principal or in `serviceAccounts`. The `default` account gets no row of its
    own: the bare `ns` is it."""
    namespaces = set(client_namespaces(index))
    accounts = {
        client_name(namespace, account)
        for namespace, account in singled_out(index)
        if namespace in namespaces and account != DEFAULT_SERVICE_ACCOUNT
    }
    return tuple(sorted({*namespaces, *accounts}))


def singled_out(index: MeshIndex) -> frozenset[tuple[str, str]]:
    """(namespace, service account) pairs an ALLOW or DENY policy names, in a principal or in
    `serviceAccounts`: every other account of a namespace is judged as its `default` one."""

    def build() -> frozenset[tuple[str, str]]:
        named = {(principal.namespace, principal.service_account) for principal in _named_principals(index)}
        return frozenset(named | {pair for policy in _deciding_policies(index) for pair in policy.source_service_accounts()})

    return index.derived("singled-out service accounts", build)


def trust_domain(index: MeshIndex, namespace: str, service_account: str) -> str:
    """The trust domain a policy principal names the identity with, the first in sort order when
    several are; a pattern such as `*` names none, and `cluster.local` matches it."""

    def build() -> dict[tuple[str, str], str]:
        domains: dict[tuple[str, str], str] = {}
        for principal in _named_principals(index):
            if "*" not in principal.trust_domain:
                domains.setdefault((principal.namespace, principal.service_account), principal.trust_domain)
        return domains

    return index.derived("trust domains", build).get((namespace, service_account), DEFAULT_TRUST_DOMAIN)


def _deciding_policies(index: MeshIndex) -> Iterator[Policy]:
    # AUDIT only logs and CUSTOM defers to an external authorizer, so their sources decide nothing.
    return (policy for policy in policies(index) if policy.action in ("ALLOW", "DENY"))


def _named_principals(index: MeshIndex) -> list[Principal]:
    return sorted({principal for policy in _deciding_policies(index) for principal in policy.source_principals()})
