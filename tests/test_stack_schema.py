"""The stack config's JSON Schema, generated from the model: current, and true of every stack file."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from stack.schema import SCHEMA_PATH, rendered

from .support import ROOT

STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_one_the_model_generates():
    assert SCHEMA_PATH.read_text() == rendered(), "docs/stack-config.schema.json is stale: run python -m stack.schema"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.name)
def test_every_stack_file_in_the_repository_validates(validator, stack_file):
    assert [error.message for error in validator.iter_errors(yaml.safe_load(stack_file.read_text()))] == []


def test_every_stack_file_points_editors_at_the_schema():
    assert STACK_FILES
    assert all("# yaml-language-server: $schema=./docs/stack-config.schema.json" in path.read_text() for path in STACK_FILES)


@pytest.mark.parametrize(("config", "words"), [
    ({"ambient-egress:grant": []}, "is not valid under any of the given schemas"),
    ({"ambient-egress:databases": [{"name": "orders", "port": 0}]}, "0 is less than the minimum of 1"),
    ({"ambient-egress:databases": [{"name": "Orders"}]}, "does not match"),
    ({"ambient-egress:grants": [{"namespace": "shop", "services": [{"name": "web", "methods": ["FETCH"]}]}]},
     "is not valid under any of the given schemas"),
])
def test_the_schema_catches_what_the_model_rejects(validator, config, words):
    messages = [error.message for error in validator.iter_errors({"config": config})]
    assert any(words in message for message in messages), messages


def test_the_schema_accepts_a_service_granted_by_name_or_narrowed(validator):
    grants = [{"namespace": "shop", "services": ["web", {"name": "api", "methods": ["GET"], "paths": ["/v1/*"]}]}]
    assert list(validator.iter_errors({"config": {"ambient-egress:grants": grants, "kubernetes:context": "x"}})) == []
