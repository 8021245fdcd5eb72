"""Admission: only the egress namespace may hold ServiceEntries, so no tenant routes around the waypoint.

ztunnel prefers a ServiceEntry in the client's own namespace when several claim one host or address
(ztunnel src/state/service.rs). A tenant allowed to create one for a database's host, with no
waypoint, would send its own traffic straight out; the admission policy refuses to create it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core import metadata


def service_entry_namespaces_policy(name: str, allowed_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding: ServiceEntries only in `allowed_namespaces`."""
    allowed = sorted(set(allowed_namespaces))
    listed = ", ".join(f"'{namespace}'" for namespace in allowed)
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata(name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["networking.istio.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["serviceentries"],
            }]},
            "validations": [{
                # `request` carries the namespace for every operation; the object's own metadata
                # is not all visible to a policy.
                "expression": f"request.namespace in [{listed}]",
                "messageExpression": (f"'ServiceEntry ' + request.name + ' may not be created in namespace ' + "
                                      f"request.namespace + ': ServiceEntries belong in {', '.join(allowed)}, where the "
                                      "egress waypoint enforces them'"),
                "reason": "Forbidden",
            }],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata(name),
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]
