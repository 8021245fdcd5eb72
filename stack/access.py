"""What a stack config promises: the declared verdict of every client and target.

This is the product's contract, compared by `make plan` with what the analysis computes from the
rendered manifests alone. Requests are matched with the analysis layer's own Istio matching, so the
two sides of the comparison cannot disagree on what a path pattern means.
"""

from __future__ import annotations

from analysis import Decision
from analysis.matching import path_matches
from analysis.matrix import client_identity, client_name

from .model import Access, Grant, StackConfig

ALLOW, DENY, LIMITED = Decision.ALLOW.value, Decision.DENY.value, Decision.LIMITED.value


def clients(grant: Grant) -> tuple[str, ...]:
    """The matrix rows a grant speaks for: the namespace, then each service account it names, in
    the order `NamespaceGrant` references them."""
    return (grant.namespace, *(client_name(grant.namespace, account) for account in grant.identities()))


def declared_clients(config: StackConfig) -> list[str]:
    """Every row the grants speak for, in name order."""
    return sorted({client for grant in config.grants for client in clients(grant)})


def test_client(grant: Grant) -> str:
    """The row of the grant's test client, which runs as its first service account."""
    rows = clients(grant)
    return rows[1] if len(rows) > 1 else rows[0]


def _accesses(grant: Grant) -> tuple[Access, ...]:
    """Every target the grant opens, databases first, each with the identities it admits."""
    # Built from a validated config, so not validated again (which would need the whole config).
    databases = tuple(Access.model_construct(name=name, methods=(), paths=(), service_accounts=grant.service_accounts or None)
                      for name in grant.databases)
    services = tuple(
        access if access.service_accounts is not None
        else access.model_copy(update={"service_accounts": grant.service_accounts or None})
        for access in grant.services
    )
    return databases + services


def _covering(grant: Grant, client: str) -> dict[str, list[Access]]:
    """The accesses of `grant` that admit `client`, by target."""
    _, account = client_identity(client)
    covering: dict[str, list[Access]] = {}
    for access in _accesses(grant):
        if not access.service_accounts or account in access.service_accounts:
            covering.setdefault(access.name, []).append(access)
    return covering


def _cell(accesses: list[Access]) -> str:
    if not accesses:
        return DENY
    return LIMITED if all(access.is_limited for access in accesses) else ALLOW


def access_matrix(config: StackConfig) -> dict[str, dict[str, str]]:
    """The intended verdict for every client and target.

    A client is a grant's namespace or `<ns>/sa/<account>` for a service account a grant names;
    the bare namespace stands for the namespace's other identities. A cell is ALLOW, DENY, or
    LIMITED where only some HTTP requests are granted.
    """
    matrix = {}
    for grant in config.grants:
        for client in clients(grant):
            covering = _covering(grant, client)
            matrix[client] = {target: _cell(covering.get(target, [])) for target in config.targets}
    return matrix


def granted(config: StackConfig) -> dict[str, dict[str, str]]:
    """The access matrix without its DENY cells: what the stack exports, growing with the grants
    rather than with namespaces × targets."""
    return {client: {target: cell for target, cell in row.items() if cell != DENY}
            for client, row in access_matrix(config).items()}


def permits(access: Access, method: str, path: str) -> bool:
    return (not access.methods or method in access.methods) and (
        not access.paths or any(path_matches(pattern, path) for pattern in access.paths))


def request_verdict(config: StackConfig, client: str, target: str, method: str, path: str) -> str:
    """What the grants intend for one HTTP request from `client` (a row of the access matrix)."""
    grant = next((grant for grant in config.grants if client in clients(grant)), None)
    accesses = _covering(grant, client).get(target, []) if grant else []
    return ALLOW if any(permits(access, method, path) for access in accesses) else DENY


def sample_requests(config: StackConfig) -> list[dict[str, str]]:
    """Every declared client against every sample request of every HTTP service, with the verdict the
    grants intend for it: what `make verify` sends, and what `make plan` checks the manifests against."""
    rows = declared_clients(config)
    return [
        {"client": client, "target": service.name, "method": sample.method, "path": sample.path,
         "declared": request_verdict(config, client, service.name, sample.method, sample.path)}
        for service in config.services if service.http_ports
        for client in rows
        for sample in service.sample_requests
    ]
