"""The stack outputs `make verify` reads beside the access matrix: what to dial for each target,
which HTTP requests to send, and which namespaces are locked down. `make plan` writes its `targets`
in the same shape, so a verifier takes either."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from .model import StackConfig

DATABASE, SERVICE = "database", "service"


def target_record(name: str, kind: str, service_entry: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A target as a verifier dials it, from its ServiceEntry's spec: hosts, pinned addresses, ports."""
    return {
        "name": name,
        "kind": kind,
        "serviceEntry": service_entry,
        "hosts": list(spec.get("hosts") or []),
        "addresses": list(spec.get("addresses") or []),
        # Numbers come back from the engine as floats (5432.0).
        "ports": [{"number": int(port["number"]), "protocol": port.get("protocol", "TCP"), "name": port.get("name", "")}
                  for port in spec.get("ports") or []],
    }


def target_kind(config: StackConfig, name: str) -> str:
    return DATABASE if any(database.name == name for database in config.databases) else SERVICE


def egress_lockdown(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Per granted namespace: whether its egress is locked down, and the CIDRs it may still reach."""
    return {
        grant.namespace: {"enabled": lockdown.enabled, "allowCidrs": list(lockdown.allow_cidrs)}
        for grant in config.grants
        for lockdown in (config.lockdown(grant),)
    }


def targets(config: StackConfig, entries: Mapping[str, pulumi.CustomResource]) -> pulumi.Output[list[dict[str, Any]]]:
    """Every target as deployed: read from its ServiceEntry's spec, so a stand-in's LoadBalancer
    address is the one the cluster gave it."""
    return pulumi.Output.all(*[
        entry.spec.apply(  # type: ignore[attr-defined]
            lambda spec, name=name: target_record(name, target_kind(config, name), f"{config.egress_namespace}/{name}", spec))
        for name, entry in entries.items()
    ])
