"""ServiceEntryAdmission: only the egress namespace holds ServiceEntries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from . import manifests
from .names import dns_label_problem
from .resources import child_options, kubernetes_object

TYPE_TOKEN = "ambient-egress:index:ServiceEntryAdmission"


@dataclass(frozen=True, kw_only=True)
class ServiceEntryAdmissionArgs:
    egress_namespace: str
    other_namespaces: Sequence[str] = ()
    """Namespaces that may keep ServiceEntries of their own (another egress namespace, say)."""

    def __post_init__(self) -> None:
        for value in (self.egress_namespace, *self.other_namespaces):
            if problem := dns_label_problem(value):
                raise ValueError(f"ServiceEntryAdmissionArgs: namespace {value!r} {problem}")


class ServiceEntryAdmission(pulumi.ComponentResource):
    """A ValidatingAdmissionPolicy and its binding that refuse ServiceEntries outside the egress
    namespace: a tenant's own ServiceEntry for a database's host would route its traffic around
    the egress door. Needs Kubernetes 1.30 or newer."""

    def __init__(self, name: str, args: ServiceEntryAdmissionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        policy_name = f"ambient-egress.{args.egress_namespace}.serviceentry-namespaces"
        for manifest in manifests.service_entry_namespaces_policy(policy_name, [args.egress_namespace, *args.other_namespaces]):
            kubernetes_object(f"{name}/{manifest['kind']}", manifest, child_options(self, opts))
        self.register_outputs({})
