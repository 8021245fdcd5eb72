"""Where config comes from: a stack file read as Pulumi reads it, and the running stack's config
read through `pulumi.Config`. Every bad input gets one clear problem naming where it is and the
fix, never a traceback, and nothing is registered."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from stack import ConfigError, load_stack_file, parse_config, parse_pulumi_config, read_stack_file
from tools.mock_engine import RecordingMocks, run_program

from .support import P

SOUND = "config:\n  ambient-egress:databases:\n    - name: orders\n      address: 10.0.0.5\n"


def stack_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    return raised.value.problems


def test_a_sound_stack_file_loads(tmp_path):
    assert [database.name for database in load_stack_file(stack_file(tmp_path, SOUND)).databases] == ["orders"]


@pytest.mark.parametrize(("text", "words"), [
    pytest.param("config:\n  ambient-egress:databases:\n    - name: orders\n   address: 10.0.0.5\n",
                 "Pulumi.test.yaml line 4 column 4: ", id="indentation"),
    pytest.param("config:\n\tambient-egress:databases: []\n", "Pulumi.test.yaml line 2 column 1: ", id="tab"),
    pytest.param("config:\n  ambient-egress:grants: [\n", "Pulumi.test.yaml line 3 column 1: ", id="unclosed-list"),
])
def test_a_yaml_syntax_error_names_the_line_and_column_and_what_to_check(tmp_path, text, words):
    [problem] = problems(stack_file(tmp_path, text))
    assert problem.startswith(words), problem
    assert problem.endswith("check the indentation (spaces, not tabs) and the quoting there")


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path):
    path = stack_file(tmp_path, b"config:\n  ambient-egress:egressNamespace: egr\xe9ss\n")
    assert problems(path) == ("Pulumi.test.yaml line 2: byte 0xe9 is not UTF-8; save the file as UTF-8",)


def test_a_top_level_list_is_no_stack_file(tmp_path):
    assert problems(stack_file(tmp_path, "- config: {}\n")) == (
        "Pulumi.test.yaml: must be a map with a 'config' key (got list); see Pulumi.dev.yaml for the shape",)


def test_config_as_a_list_is_rejected_with_the_shape_it_needs(tmp_path):
    assert problems(stack_file(tmp_path, "config:\n  - ambient-egress:databases: []\n")) == (
        "Pulumi.test.yaml: 'config' must be a map of '<namespace>:<key>' entries, e.g. 'ambient-egress:grants' (got list)",)


def test_a_key_given_twice_is_an_error_as_in_pulumi_not_the_last_one_winning(tmp_path):
    text = SOUND + "  ambient-egress:grants: []\n  ambient-egress:grants:\n    - namespace: shop\n      databases: [orders]\n"
    assert problems(stack_file(tmp_path, text)) == (
        "Pulumi.test.yaml line 6 column 3: the key 'ambient-egress:grants' is given twice (first on line 5); keep one",)


def test_a_misspelt_project_namespace_is_caught_not_silently_dropped(tmp_path):
    text = SOUND + "  ambient-egres:grants:\n    - namespace: shop\n      databases: [orders]\n"
    assert problems(stack_file(tmp_path, text)) == (
        'Pulumi.test.yaml: ambient-egres:grants: unknown config namespace "ambient-egres"; did you mean '
        '"ambient-egress:grants"?',)


def test_other_namespaces_such_as_the_kubernetes_context_are_left_to_their_owners(tmp_path):
    path = stack_file(tmp_path, SOUND + "  kubernetes:context: kind-ambient-egress\n  random:seed: 1\n")
    assert load_stack_file(path).databases
    assert read_stack_file(path).kubernetes_context == "kind-ambient-egress"


def test_a_key_without_a_namespace_is_named_with_the_fix(tmp_path):
    assert problems(stack_file(tmp_path, SOUND + "  testClients: true\n")) == (
        "Pulumi.test.yaml: testClients: a config key needs its namespace; write ambient-egress:testClients",)


def test_an_unknown_top_level_key_in_a_stack_file_is_named(tmp_path):
    assert problems(stack_file(tmp_path, SOUND + "grants: []\n")) == (
        "Pulumi.test.yaml: unknown top-level key 'grants'; config belongs under 'config:'",)


def test_a_secret_config_value_is_refused_because_it_would_not_stay_secret(tmp_path):
    path = stack_file(tmp_path, SOUND + "  ambient-egress:trustDomain:\n    secure: v1:abcdef\n")
    [secret, *_rest] = problems(path)
    assert secret == (f"Pulumi.test.yaml: {P}trustDomain: is stored as a secret, but its values name and address "
                      "Kubernetes objects, which are never secret in the cluster or in the state; set it without --secret")


@pytest.mark.parametrize(("address", "words"), [
    ("orders.example.com:5432", "must be an IPv4 address or a DNS name without a port (got 'orders.example.com:5432'); "
                                "write 'orders.example.com' and give the port 5432 in its own field"),
    ("postgres://app@orders.example.com:5432/orders", "must be an IPv4 address or a DNS name, not a URL "
                                                     "(got 'postgres://app@orders.example.com:5432/orders'); write only the "
                                                     "host, e.g. 'orders.example.com:5432'"),
    ("2001:db8::1", "must be an IPv4 address or a DNS name; IPv6 is not supported (got '2001:db8::1')"),
])
def test_an_address_with_a_port_or_a_scheme_gets_its_own_fix_not_an_ipv6_message(address, words):
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [{"name": "orders", "address": address}]})
    assert raised.value.problems == (f"{P}databases[0].address: {words}",)


def test_a_spiffe_trust_domain_is_told_to_drop_the_scheme():
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [], "trustDomain": "spiffe://example.org"})
    assert raised.value.problems == (f"{P}trustDomain: must be an IPv4 address or a DNS name, not a URL "
                                     "(got 'spiffe://example.org'); write only the host, e.g. 'example.org'",)


# --- the running stack, through pulumi.Config ------------------------------------------------------

def test_the_program_refuses_a_secret_key_and_registers_nothing():
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=f"{P}grants: is stored as a secret"):
        run_program({"databases": [{"name": "orders", "address": "10.0.0.5"}],
                     "grants": [{"namespace": "shop", "databases": ["orders"]}]}, mocks, secret_keys=["grants"])
    assert mocks.registered == []


def test_the_program_catches_a_misspelt_namespace_in_the_running_stacks_config():
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match='unknown config namespace "ambient-egres"'):
        run_program({"databases": [{"name": "orders", "address": "10.0.0.5"}]}, mocks,
                    other_config={"ambient-egres:grants": [{"namespace": "shop", "databases": ["orders"]}]})
    assert mocks.registered == []


def test_the_program_reads_other_namespaces_keys_without_judging_them():
    program = run_program({"databases": [{"name": "orders", "address": "10.0.0.5"}]}, RecordingMocks(),
                          other_config={"kubernetes:context": "kind-ambient-egress"})
    assert program.manifests()


def test_problems_are_listed_in_one_order_whatever_order_the_keys_arrive_in():
    raw = {f"{P}databases": "[]", f"{P}grant": "null", f"{P}databse": "null", "ambient-egres:grants": "[]"}
    orders = [dict(items) for items in (raw.items(), reversed(raw.items()))]
    listed = []
    for keys in orders:
        with pytest.raises(ConfigError) as raised:
            parse_pulumi_config(keys)
        listed.append(raised.value.problems)
    assert listed[0] == listed[1] and len(listed[0]) == 3
