"""AuthorizationPolicies at the waypoint: a ServiceEntry is closed by an allow-nothing baseline
and opened, one grant at a time, by ALLOW policies beside it that target it through `targetRefs`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..values import principal
from .core import metadata
from .mesh import SERVICE_ENTRY_REF


def _authorization_policy(name: str, namespace_name: str, service_entry_name: str,
                          rules: list[dict[str, Any]] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"targetRefs": [{**SERVICE_ENTRY_REF, "name": service_entry_name}], "action": "ALLOW"}
    if rules is not None:
        spec["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(name, namespace_name),
        "spec": spec,
    }


def allow_nothing_policy(service_entry_name: str, namespace_name: str) -> dict[str, Any]:
    """An ALLOW policy without rules matches nothing: the ServiceEntry is closed until granted."""
    return _authorization_policy(f"{service_entry_name}-allow-nothing", namespace_name, service_entry_name, None)


def grant_policy_name(service_entry_name: str, source_namespace: str) -> str:
    return f"allow-{service_entry_name}-from-{source_namespace}"


def access_rule(
    source_namespace: str,
    *,
    ports: Iterable[int],
    service_accounts: Iterable[str] = (),
    trust_domain: str,
    methods: Sequence[str] = (),
    paths: Sequence[str] = (),
) -> dict[str, Any]:
    """One ALLOW rule: a source namespace, or only some of its service accounts, to some ports.

    Methods and paths belong on HTTP ports only: a TCP rule may use only ports, namespaces and
    principals, and an ALLOW rule carrying HTTP fields would never match TCP traffic.
    """
    principals = [principal(trust_domain, source_namespace, account) for account in service_accounts]
    source = {"principals": principals} if principals else {"namespaces": [source_namespace]}
    operation: dict[str, Any] = {"ports": [str(port) for port in ports]}
    if methods:
        operation["methods"] = list(methods)
    if paths:
        operation["paths"] = list(paths)
    return {"from": [{"source": source}], "to": [{"operation": operation}]}


def grant_policy(service_entry_name: str, namespace_name: str, *, source_namespace: str,
                 rules: list[dict[str, Any]]) -> dict[str, Any]:
    """ALLOW one source namespace's access to one ServiceEntry: one policy per grant and target."""
    name = grant_policy_name(service_entry_name, source_namespace)
    return _authorization_policy(name, namespace_name, service_entry_name, rules)
