from __future__ import annotations

import pytest
import yaml

from analysis import access_matrix, load_manifests
from analysis import manifests as loading

SEED_NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata:
  name: rds-demo-1
  labels:
    istio.io/dataplane-mode: ambient
---
# an empty document, as editors leave behind
---
apiVersion: v1
kind: Namespace
metadata:
  name: istio-egress
  labels:
    istio.io/dataplane-mode: ambient
"""

SEED_EGRESS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: istio-egress
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: postgres-1
  namespace: istio-egress
  labels:
    istio.io/use-waypoint: waypoint
spec:
  hosts: ["10.0.0.1.nip.io"]
  addresses: ["10.0.0.1"]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 5432, name: tcp-postgres, protocol: TCP}
"""

SEED_POLICIES = """\
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: postgres-1-allow-nothing, namespace: istio-egress}
  spec:
    targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: postgres-1}]
    action: ALLOW
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: allow-postgres-1-from-rds-demo-1, namespace: istio-egress}
  spec:
    targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: postgres-1}]
    action: ALLOW
    rules:
    - from: [{source: {namespaces: [rds-demo-1]}}]
      to: [{operation: {ports: ["5432"]}}]
"""


@pytest.fixture
def seed_directory(tmp_path):
    (tmp_path / "namespaces.yaml").write_text(SEED_NAMESPACES)
    (tmp_path / "egress").mkdir()
    (tmp_path / "egress" / "egress.yml").write_text(SEED_EGRESS)
    (tmp_path / "egress" / "policies.yaml").write_text(SEED_POLICIES)
    (tmp_path / "README.md").write_text("not a manifest")
    return tmp_path


def test_directory_is_read_recursively_in_path_order_skipping_empty_documents(seed_directory):
    kinds = [(m["kind"], m["metadata"]["name"]) for m in load_manifests(seed_directory)]
    assert kinds == [
        ("Gateway", "waypoint"),
        ("ServiceEntry", "postgres-1"),
        ("AuthorizationPolicy", "postgres-1-allow-nothing"),
        ("AuthorizationPolicy", "allow-postgres-1-from-rds-demo-1"),
        ("Namespace", "rds-demo-1"),
        ("Namespace", "istio-egress"),
    ]


def test_single_file_is_read_on_its_own(seed_directory):
    assert [m["kind"] for m in load_manifests(seed_directory / "namespaces.yaml")] == ["Namespace", "Namespace"]


def test_hand_written_seed_yields_its_verdict(seed_directory):
    matrix = access_matrix(load_manifests(seed_directory))
    assert matrix.to_dict()["cells"] == {"rds-demo-1": {"istio-egress/postgres-1": "ALLOW"}}


def test_document_that_is_not_an_object_is_rejected(tmp_path):
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(["not", "an", "object"]))
    with pytest.raises(ValueError, match=r"broken\.yaml"):
        load_manifests(tmp_path)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
def test_yaml_is_read_with_libyamls_parser_when_pyyaml_has_it():
    assert loading._LOADER is yaml.CSafeLoader


def test_the_pure_python_parser_reads_the_same_documents(seed_directory, monkeypatch):
    with_libyaml = load_manifests(seed_directory)
    monkeypatch.setattr(loading, "_LOADER", yaml.SafeLoader)
    assert load_manifests(seed_directory) == with_libyaml
