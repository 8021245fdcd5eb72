"""`pulumi preview` tells the truth: with the LoadBalancer addresses not yet known, as in a real
preview (the provider reports no `status`), every name, label and port is known; only the fields
made from an address are not."""

from __future__ import annotations

import pytest

from tools.mock_engine import Registered, is_unknown

from .support import run


def unknown_paths(value, path: str = "") -> list[str]:
    """Where in a registration's inputs the engine does not know the value yet."""
    if is_unknown(value):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in unknown_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in unknown_paths(item, f"{path}[{index}]")]
    return []


@pytest.fixture(scope="module")
def preview():
    return run(preview=True)


def kubernetes(preview, kind: str) -> list[Registered]:
    return [r for r in preview.resources if r.is_kubernetes and not r.read and r.inputs.get("kind") == kind]


def test_every_object_the_preview_shows_has_a_known_kind_name_and_labels(preview):
    created = [r for r in preview.resources if r.is_kubernetes and not r.read]
    assert len(created) == len(run().manifests())
    for resource in created:
        assert not unknown_paths(resource.inputs.get("metadata")), resource.name


def test_a_stand_ins_service_entry_shows_its_waypoint_binding_and_ports_with_only_the_address_unknown(preview):
    entries = kubernetes(preview, "ServiceEntry")
    assert len(entries) == 2
    for entry in entries:
        assert entry.inputs["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"
        assert entry.inputs["spec"]["ports"] == [{"number": 5432.0, "name": "tcp-postgres", "protocol": "TCP"}]
        assert sorted(unknown_paths(entry.inputs)) == [".spec.addresses", ".spec.hosts[0]", ".spec.resolution"], entry.name


def test_grant_policies_and_baselines_are_wholly_known_in_preview(preview):
    for policy in kubernetes(preview, "AuthorizationPolicy"):
        assert unknown_paths(policy.inputs) == [], policy.name


def test_an_existing_databases_service_entry_is_wholly_known_in_preview():
    program = run({"databases": [{"name": "orders", "address": "10.0.0.5"}],
                   "grants": [{"namespace": "shop", "databases": ["orders"]}]}, {}, preview=True)
    entry = next(r for r in program.resources if r.inputs.get("kind") == "ServiceEntry")
    assert unknown_paths(entry.inputs) == []
    assert entry.inputs["spec"]["hosts"] == ["10.0.0.5.nip.io"]
