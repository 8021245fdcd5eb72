"""The stack config model: every bad input is rejected whole, each problem naming its key and the fix.

Problems are asserted by their exact key (`ambient-egress:grants[0].databases[0]`) and by the words
that tell the user what to do; the end-to-end tests run the real program on Pulumi's mock engine
and check that a rejected config registers no resource at all.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from stack import BypassProtection, ConfigError, load_stack_file, parse_config, parse_pulumi_config, pulumi_form
from stack.access import ALLOW, DENY, access_matrix
from tools.mock_engine import RecordingMocks, run_program

from .support import ROOT, P, dev_values

DEV_STACK_FILE = ROOT / "Pulumi.dev.yaml"

# A small sound config that each test breaks in exactly one place.
SOUND = {
    "databases": [{"name": "postgres-1"}, {"name": "postgres-2", "port": 5433}],
    "grants": [
        {"namespace": "team-a", "databases": ["postgres-1"]},
        {"namespace": "team-b", "databases": ["postgres-1", "postgres-2"]},
    ],
}


def sound(**overrides: Any) -> dict[str, Any]:
    config = copy.deepcopy(SOUND)
    config.update(copy.deepcopy(overrides))
    return config


def problems_of(values: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        parse_config(values)
    return raised.value.problems


def problems_of_pulumi(raw: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        parse_pulumi_config(raw)
    return raised.value.problems


def problem_at(values: dict[str, Any], key: str) -> str:
    """The one problem reported at exactly `key`, without the key prefix."""
    problems = problems_of(values)
    at_key = [problem[len(key) + 2:] for problem in problems if problem.startswith(f"{key}: ")]
    assert len(at_key) == 1, f"expected one problem at {key}, got {problems}"
    return at_key[0]


def keys_of(problems: tuple[str, ...]) -> list[str]:
    return [problem.split(": ", 1)[0] for problem in problems]


# --- the sound config and defaults ---------------------------------------------------------------


def test_the_sound_example_config_is_accepted():
    config = parse_config(sound())
    assert [database.name for database in config.databases] == ["postgres-1", "postgres-2"]
    assert [grant.namespace for grant in config.grants] == ["team-a", "team-b"]


def test_omitted_top_level_keys_take_their_documented_defaults():
    config = parse_config({"databases": [{"name": "postgres-1"}]})
    assert config.egress_namespace == "istio-egress"
    assert config.database_namespace == "db"
    assert config.waypoint_name == "waypoint"
    assert config.trust_domain == "cluster.local"
    assert config.test_clients is False
    assert config.grants == ()
    assert config.bypass_protection == BypassProtection(service_entry_addresses=True, database_ingress_policy=True)
    assert (config.egress_lockdown.enabled, config.egress_lockdown.allow_cidrs) == (True, ())
    assert (config.service_entry_admission.enabled, config.service_entry_admission.allowed_namespaces) == (True, ())
    assert (config.istio.version, config.istio.install, config.gateway_api.install) == ("1.30", False, False)


def test_a_database_without_port_or_address_is_a_stand_in_on_port_5432():
    database = parse_config({"databases": [{"name": "postgres-1"}]}).databases[0]
    assert (database.name, database.port, database.address) == ("postgres-1", 5432, None)
    assert database.is_stand_in


def test_a_database_with_an_address_is_not_a_stand_in():
    database = parse_config({"databases": [{"name": "orders", "address": "orders.example.com", "port": 6432}]}).databases[0]
    assert (database.name, database.port, database.address) == ("orders", 6432, "orders.example.com")
    assert not database.is_stand_in


def test_a_grant_without_service_accounts_admits_every_identity_of_its_namespace():
    grant = parse_config(sound()).grants[0]
    assert (grant.namespace, grant.databases, grant.service_accounts) == ("team-a", ("postgres-1",), ())


def test_a_grant_keeps_its_service_accounts_in_order():
    config = parse_config(sound(grants=[
        {"namespace": "team-a", "databases": ["postgres-1"], "serviceAccounts": ["api", "worker"]}]))
    assert config.grants[0].service_accounts == ("api", "worker")


def test_bypass_protection_flags_left_out_keep_their_defaults():
    config = parse_config(sound(bypassProtection={"databaseIngressPolicy": False}))
    assert config.bypass_protection == BypassProtection(service_entry_addresses=True, database_ingress_policy=False)


def test_the_retired_client_egress_policy_flag_says_what_replaced_it():
    assert problem_at(sound(bypassProtection={"clientEgressPolicy": True}), f"{P}bypassProtection.clientEgressPolicy") == (
        "was replaced by egressLockdown, on by default for every grant; remove it")


@pytest.mark.parametrize("port", [1, 65535])
def test_ports_at_the_edges_of_the_range_are_accepted(port):
    assert parse_config({"databases": [{"name": "postgres-1", "port": port}]}).databases[0].port == port


@pytest.mark.parametrize("address", ["10.20.30.40", "orders.example.com", "localhost", "db-1.eu-west-1.rds.amazonaws.com"])
def test_an_ipv4_address_or_a_dns_name_is_accepted_as_a_database_address(address):
    assert parse_config({"databases": [{"name": "orders", "address": address}]}).databases[0].address == address


# --- the dev stack --------------------------------------------------------------------------------


def test_the_dev_stack_declares_two_postgres_stand_ins():
    config = load_stack_file(DEV_STACK_FILE)
    assert [(database.name, database.port) for database in config.databases] == [("postgres-1", 5432), ("postgres-2", 5432)]
    assert all(database.is_stand_in for database in config.databases)


def test_the_dev_stack_grants_each_demo_namespace_one_database():
    config = load_stack_file(DEV_STACK_FILE)
    assert [(grant.namespace, grant.databases, grant.service_accounts) for grant in config.grants] == [
        ("rds-demo-1", ("postgres-1",), ()), ("rds-demo-2", ("postgres-2",), ())]


def test_the_dev_stack_enables_test_clients_in_the_default_namespaces():
    config = load_stack_file(DEV_STACK_FILE)
    assert config.test_clients is True
    assert (config.egress_namespace, config.database_namespace) == ("istio-egress", "db")


def test_the_dev_stack_parses_the_same_from_pulumis_string_form_and_from_structured_values():
    prefixed = {f"{P}{key}": value for key, value in dev_values().items()}
    assert parse_pulumi_config(pulumi_form(prefixed)) == load_stack_file(DEV_STACK_FILE) == parse_config(dev_values())


# --- access matrix --------------------------------------------------------------------------------


def test_the_dev_access_matrix_allows_each_namespace_only_its_own_database():
    assert access_matrix(load_stack_file(DEV_STACK_FILE)) == {
        "rds-demo-1": {"postgres-1": ALLOW, "postgres-2": DENY},
        "rds-demo-2": {"postgres-1": DENY, "postgres-2": ALLOW},
    }


def test_the_access_matrix_allows_every_database_a_grant_lists():
    assert access_matrix(parse_config(sound()))["team-b"] == {"postgres-1": ALLOW, "postgres-2": ALLOW}


def test_the_access_matrix_gives_each_granted_service_account_its_own_row_and_denies_the_rest_of_the_namespace():
    config = parse_config(sound(grants=[
        {"namespace": "team-a", "databases": ["postgres-2"], "serviceAccounts": ["api"]}]))
    assert access_matrix(config) == {
        "team-a": {"postgres-1": DENY, "postgres-2": DENY},
        "team-a/sa/api": {"postgres-1": DENY, "postgres-2": ALLOW},
    }


def test_the_access_matrix_has_no_rows_without_grants():
    assert access_matrix(parse_config({"databases": [{"name": "postgres-1"}]})) == {}


# --- Pulumi's string form -------------------------------------------------------------------------


def test_pulumi_config_decodes_databases_grants_and_bypass_protection_from_json():
    config = parse_pulumi_config({
        f"{P}databases": json.dumps([{"name": "orders", "port": 6432, "address": "10.20.30.40"}]),
        f"{P}grants": json.dumps([{"namespace": "team-a", "databases": ["orders"], "serviceAccounts": ["api"]}]),
        f"{P}bypassProtection": json.dumps({"databaseIngressPolicy": False, "serviceEntryAddresses": False}),
    })
    assert [(database.name, database.port, database.address) for database in config.databases] == [
        ("orders", 6432, "10.20.30.40")]
    assert [(grant.namespace, grant.databases, grant.service_accounts) for grant in config.grants] == [
        ("team-a", ("orders",), ("api",))]
    assert config.bypass_protection == BypassProtection(service_entry_addresses=False, database_ingress_policy=False)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False)])
def test_pulumi_config_reads_the_strings_true_and_false_as_booleans(text, expected):
    config = parse_pulumi_config({f"{P}databases": "[]", f"{P}testClients": text})
    assert config.test_clients is expected


def test_pulumi_config_takes_plain_strings_for_scalar_keys():
    config = parse_pulumi_config({f"{P}databases": "[]", f"{P}egressNamespace": "egress",
                                  f"{P}databaseNamespace": "external-dbs", f"{P}waypointName": "gw",
                                  f"{P}trustDomain": "example.org"})
    assert (config.egress_namespace, config.database_namespace, config.waypoint_name, config.trust_domain) == (
        "egress", "external-dbs", "gw", "example.org")


def test_pulumi_config_ignores_other_projects_keys():
    config = parse_pulumi_config({f"{P}databases": "[]", "kubernetes:context": "kind-ambient", "other:databse": "x"})
    assert config.databases == ()


@pytest.mark.parametrize("text", ["postgres-1", "[{\"name\": \"postgres-1\"", "{\"name\": \"postgres-1\"}"])
def test_pulumi_config_names_the_key_when_databases_is_not_a_json_list(text):
    problems = problems_of_pulumi({f"{P}databases": text})
    assert keys_of(problems) == [f"{P}databases"]
    assert "must be a list" in problems[0]


def test_pulumi_config_names_the_key_when_a_boolean_is_not_true_or_false():
    problems = problems_of_pulumi({f"{P}databases": "[]", f"{P}testClients": "yes"})
    assert problems == (f"{P}testClients: must be true or false (got a string 'yes')",)


def test_pulumi_config_rejects_very_deeply_nested_json_with_the_key_not_a_recursion_error():
    deep = "[" * 100_000 + "]" * 100_000
    problems = problems_of_pulumi({f"{P}databases": deep})
    assert keys_of(problems) == [f"{P}databases"]


def test_pulumi_config_rejects_json_nested_just_under_the_decoder_limit_with_the_key():
    deep = "[" * 990 + "]" * 990  # decodes or not depending on the stack depth; either way, a keyed problem
    problems = problems_of_pulumi({f"{P}databases": deep})
    assert problems and all(key.startswith(f"{P}databases") for key in keys_of(problems))


# --- each kind of problem, at its key, with its fix -----------------------------------------------


def test_a_grant_of_an_undeclared_database_is_reported_at_that_entry_with_the_fix():
    message = problem_at(sound(grants=[{"namespace": "team-a", "databases": ["postgres-1", "mysql-9"]}]),
                         f"{P}grants[0].databases[1]")
    assert "unknown database 'mysql-9'" in message
    assert f"declare it under {P}databases first" in message


def test_a_misspelt_database_in_a_grant_gets_a_did_you_mean_hint():
    message = problem_at(sound(grants=[{"namespace": "team-a", "databases": ["postgres1"]}]),
                         f"{P}grants[0].databases[0]")
    assert 'did you mean "postgres-1"?' in message


@pytest.mark.parametrize(("overrides", "key", "words"), [
    pytest.param({"databases": [{"name": "postgres-1"}, {"name": "postgres-1", "port": 5433}]},
                 f"{P}databases[1].name", f"duplicate database name 'postgres-1' (first at {P}databases[0].name)",
                 id="database-name"),
    pytest.param({"grants": [{"namespace": "team-a", "databases": ["postgres-1"]},
                             {"namespace": "team-a", "databases": ["postgres-2"]}]},
                 f"{P}grants[1].namespace", f"duplicate grant namespace 'team-a' (first at {P}grants[0].namespace)",
                 id="grant-namespace"),
    pytest.param({"grants": [{"namespace": "team-a", "databases": ["postgres-1", "postgres-1"]}]},
                 f"{P}grants[0].databases[1]", f"duplicate database 'postgres-1' (first at {P}grants[0].databases[0])",
                 id="database-within-a-grant"),
    pytest.param({"grants": [{"namespace": "team-a", "databases": ["postgres-1"], "serviceAccounts": ["api", "api"]}]},
                 f"{P}grants[0].serviceAccounts[1]",
                 f"duplicate service account 'api' (first at {P}grants[0].serviceAccounts[0])",
                 id="service-account"),
])
def test_a_duplicate_is_reported_at_its_second_occurrence_pointing_at_the_first(overrides, key, words):
    message = problem_at(sound(**overrides), key)
    assert words in message
    assert "each must appear once" in message


def _database_name(value):
    return {"databases": [{"name": value}], "grants": []}


def _grant_namespace(value):
    return sound(grants=[{"namespace": value, "databases": ["postgres-1"]}])


def _service_account(value):
    return sound(grants=[{"namespace": "team-a", "databases": ["postgres-1"], "serviceAccounts": [value]}])


NAME_KEYS = [
    pytest.param(_database_name, f"{P}databases[0].name", id="database-name"),
    pytest.param(_grant_namespace, f"{P}grants[0].namespace", id="grant-namespace"),
    pytest.param(_service_account, f"{P}grants[0].serviceAccounts[0]", id="service-account"),
    pytest.param(lambda value: sound(egressNamespace=value), f"{P}egressNamespace", id="egressNamespace"),
    pytest.param(lambda value: sound(databaseNamespace=value), f"{P}databaseNamespace", id="databaseNamespace"),
    pytest.param(lambda value: sound(waypointName=value), f"{P}waypointName", id="waypointName"),
]
BAD_NAMES = ["Postgres", "team_a", "-team", "team-", "a" * 64, "", "tëam", "team.a", "team a"]


@pytest.mark.parametrize("bad_name", BAD_NAMES)
@pytest.mark.parametrize(("build", "key"), NAME_KEYS)
def test_a_name_that_is_not_a_dns_1123_label_is_rejected_at_its_key_with_the_rule(build, key, bad_name):
    message = problem_at(build(bad_name), key)
    assert "must be a DNS-1123 label: at most 63 lowercase letters, digits and '-'" in message


@pytest.mark.parametrize(("build", "key"), NAME_KEYS)
def test_a_name_with_a_trailing_newline_is_rejected_at_its_key(build, key):
    message = problem_at(build("team-a\n"), key)
    assert "must be a DNS-1123 label" in message


def test_a_63_character_name_is_accepted():
    assert parse_config(_database_name("a" * 63)).databases[0].name == "a" * 63


def test_a_database_name_starting_with_a_digit_is_rejected_because_it_names_a_service():
    message = problem_at(_database_name("1postgres"), f"{P}databases[0].name")
    assert "must start with a letter because it names a Kubernetes Service" in message


@pytest.mark.parametrize("port", [0, -1, 65536, 10**12])
def test_a_port_outside_1_to_65535_is_rejected_at_its_key(port):
    message = problem_at({"databases": [{"name": "postgres-1", "port": port}]}, f"{P}databases[0].port")
    assert message == f"must be in 1..65535 (got {port})"


@pytest.mark.parametrize(("overrides", "namespace", "role"), [
    pytest.param({}, "istio-egress", "egressNamespace", id="default-egress"),
    pytest.param({}, "db", "databaseNamespace", id="default-database"),
    pytest.param({"egressNamespace": "egress"}, "egress", "egressNamespace", id="custom-egress"),
    pytest.param({"databaseNamespace": "external-dbs"}, "external-dbs", "databaseNamespace", id="custom-database"),
])
def test_a_grant_of_the_egress_or_database_namespace_is_rejected_with_the_fix(overrides, namespace, role):
    values = sound(grants=[{"namespace": namespace, "databases": ["postgres-1"]}], **overrides)
    message = problem_at(values, f"{P}grants[0].namespace")
    assert message == f"'{namespace}' is the {role}; grant a client namespace instead"


def test_a_grant_of_a_system_namespace_is_rejected_with_the_fix():
    message = problem_at(_grant_namespace("kube-system"), f"{P}grants[0].namespace")
    assert message == "'kube-system' is a system namespace; grant a namespace of your own"


def test_equal_egress_and_database_namespaces_are_rejected_at_the_database_namespace():
    message = problem_at(sound(egressNamespace="shared", databaseNamespace="shared"), f"{P}databaseNamespace")
    assert "must differ from egressNamespace" in message


@pytest.mark.parametrize(("address", "words"), [
    pytest.param("999.1.1.1", "is not a valid IPv4 address (got '999.1.1.1'); write four numbers 0-255", id="octet>255"),
    pytest.param("10.0.0", "is not a valid IPv4 address (got '10.0.0'); write four numbers 0-255", id="three-octets"),
    pytest.param("2001:db8::1", "IPv6 is not supported", id="ipv6"),
    pytest.param("Orders.Example.com", "e.g. orders.example.com or 10.20.30.40", id="uppercase"),
    pytest.param("db_1.example.com", "e.g. orders.example.com or 10.20.30.40", id="underscore"),
    pytest.param("orders..example.com", "e.g. orders.example.com or 10.20.30.40", id="empty-label"),
    pytest.param("", "e.g. orders.example.com or 10.20.30.40", id="empty"),
    pytest.param("https://orders.example.com", "must be an IPv4 address or a DNS name", id="url"),
    pytest.param(".".join(["a" * 63] * 4), "e.g. orders.example.com or 10.20.30.40", id="longer-than-253"),
    pytest.param("a" * 64 + ".example.com", "e.g. orders.example.com or 10.20.30.40", id="label-longer-than-63"),
])
def test_an_address_that_is_neither_ipv4_nor_a_dns_name_is_rejected_at_its_key(address, words):
    message = problem_at({"databases": [{"name": "orders", "address": address}]}, f"{P}databases[0].address")
    assert words in message


@pytest.mark.parametrize("address", ["orders.example.com\n", "10.20.30.40\n"])
def test_an_address_with_a_trailing_newline_is_rejected_at_its_key(address):
    message = problem_at({"databases": [{"name": "orders", "address": address}]}, f"{P}databases[0].address")
    assert "must be an IPv4 address or a DNS name" in message


def test_an_empty_database_list_in_a_grant_is_rejected_with_the_fix():
    message = problem_at(sound(grants=[{"namespace": "team-a", "databases": []}]), f"{P}grants[0].databases")
    assert message == "must not be empty; list at least one entry or remove the whole entry"


@pytest.mark.parametrize("field", ["methods", "paths"])
@pytest.mark.parametrize("value", [None, 5])
def test_a_service_grants_methods_or_paths_of_the_wrong_type_is_rejected_at_its_key(field, value):
    values = {"services": [{"name": "web", "host": "web.example.com", "ports": [{"number": 80, "protocol": "HTTP"}]}],
              "grants": [{"namespace": "team-a", "services": [{"name": "web", field: value}]}]}
    assert "must be a list" in problem_at(values, f"{P}grants[0].services[0].{field}")


def test_an_empty_service_account_list_in_a_grant_is_rejected_with_the_fix():
    values = sound(grants=[{"namespace": "team-a", "databases": ["postgres-1"], "serviceAccounts": []}])
    assert "must not be empty" in problem_at(values, f"{P}grants[0].serviceAccounts")


WRONG_TYPES = [
    pytest.param(sound(egressNamespace=123), f"{P}egressNamespace", "must be a string (got a number 123)",
                 id="number-for-namespace"),
    pytest.param(sound(waypointName=True), f"{P}waypointName", "must be a string (got a boolean true)",
                 id="boolean-for-name"),
    pytest.param(sound(trustDomain=["cluster.local"]), f"{P}trustDomain", "must be a string (got a list",
                 id="list-for-trust-domain"),
    pytest.param(sound(testClients="yes"), f"{P}testClients", "must be true or false (got a string 'yes')",
                 id="string-for-boolean"),
    pytest.param(sound(testClients=1), f"{P}testClients", "must be true or false (got a number 1)",
                 id="number-for-boolean"),
    pytest.param({"databases": "postgres-1"}, f"{P}databases", "must be a list (got a string 'postgres-1')",
                 id="string-for-databases"),
    pytest.param({"databases": {"name": "postgres-1"}}, f"{P}databases", "must be a list (got a map",
                 id="map-for-databases"),
    pytest.param({"databases": None}, f"{P}databases", "must be a list (got nothing null)", id="null-for-databases"),
    pytest.param({"databases": ["postgres-1"]}, f"{P}databases[0]", "must be a map (got a string 'postgres-1')",
                 id="string-for-database"),
    pytest.param({"databases": [{"name": 7}]}, f"{P}databases[0].name", "must be a string (got a number 7)",
                 id="number-for-database-name"),
    pytest.param({"databases": [{"name": "postgres-1", "port": "5432"}]}, f"{P}databases[0].port",
                 "must be a whole number in 1..65535 (got a string '5432')", id="string-for-port"),
    pytest.param({"databases": [{"name": "postgres-1", "port": True}]}, f"{P}databases[0].port",
                 "must be a whole number in 1..65535 (got a boolean true)", id="boolean-for-port"),
    pytest.param({"databases": [{"name": "postgres-1", "port": 5432.5}]}, f"{P}databases[0].port",
                 "must be a whole number in 1..65535 (got a number 5432.5)", id="fraction-for-port"),
    pytest.param({"databases": [{"name": "orders", "address": 10}]}, f"{P}databases[0].address",
                 "must be a string (got a number 10)", id="number-for-address"),
    pytest.param(sound(grants={"team-a": ["postgres-1"]}), f"{P}grants", "must be a list (got a map",
                 id="map-for-grants"),
    pytest.param(sound(grants=[{"namespace": None, "databases": ["postgres-1"]}]), f"{P}grants[0].namespace",
                 "must be a string (got nothing null)", id="null-for-grant-namespace"),
    pytest.param(sound(grants=[{"namespace": "team-a", "databases": "postgres-1"}]), f"{P}grants[0].databases",
                 "must be a list (got a string 'postgres-1')", id="string-for-grant-databases"),
    pytest.param(sound(grants=[{"namespace": "team-a", "databases": [False]}]), f"{P}grants[0].databases[0]",
                 "must be a string (got a boolean false)", id="boolean-for-grant-database"),
    pytest.param(sound(bypassProtection=True), f"{P}bypassProtection", "must be a map (got a boolean true)",
                 id="boolean-for-bypass-protection"),
    pytest.param(sound(bypassProtection={"databaseIngressPolicy": "on"}), f"{P}bypassProtection.databaseIngressPolicy",
                 "must be true or false (got a string 'on')", id="string-for-bypass-flag"),
]


@pytest.mark.parametrize(("values", "key", "words"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_rejected_at_its_key_saying_what_it_must_be(values, key, words):
    assert words in problem_at(values, key)


@pytest.mark.parametrize(("values", "key"), [
    pytest.param({}, f"{P}databases", id="databases"),
    pytest.param({"databases": [{"port": 5432}]}, f"{P}databases[0].name", id="database-name"),
    pytest.param(sound(grants=[{"databases": ["postgres-1"]}]), f"{P}grants[0].namespace", id="grant-namespace"),
    pytest.param(sound(grants=[{"namespace": "team-a"}]), f"{P}grants[0].databases", id="grant-databases"),
])
def test_a_missing_required_key_is_reported_as_required(values, key):
    assert problem_at(values, key).startswith("is required")


def test_a_missing_databases_key_says_how_to_write_one():
    assert "list the external databases, e.g. [{name: postgres-1}]" in problem_at({}, f"{P}databases")


# --- unknown keys ---------------------------------------------------------------------------------


def test_a_misspelt_top_level_key_gets_a_did_you_mean_hint():
    values = sound()
    values["databse"] = values.pop("databases")
    assert problem_at(values, f"{P}databse") == 'unknown config key; did you mean "databases"?'


def test_a_misspelt_grant_field_gets_a_did_you_mean_hint():
    values = sound(grants=[{"namespace": "team-a", "databses": ["postgres-1"]}])
    message = problem_at(values, f"{P}grants[0].databses")
    assert message.startswith('unknown field; did you mean "databases"?')
    assert all(field in message.split("known fields: ", 1)[1] for field in ("namespace", "databases", "serviceAccounts"))


def test_a_misspelt_database_field_gets_a_did_you_mean_hint():
    values = {"databases": [{"name": "postgres-1", "prot": 5433}]}
    assert 'did you mean "port"?' in problem_at(values, f"{P}databases[0].prot")


def test_a_misspelt_bypass_protection_flag_gets_a_did_you_mean_hint():
    values = sound(bypassProtection={"databaseIngresPolicy": True})
    assert 'did you mean "databaseIngressPolicy"?' in problem_at(values, f"{P}bypassProtection.databaseIngresPolicy")


def test_an_unknown_field_with_no_close_match_lists_the_known_fields():
    message = problem_at({"databases": [{"name": "postgres-1", "zzz": 1}]}, f"{P}databases[0].zzz")
    assert message == "unknown field (known fields: name, port, address)"


def test_a_misspelt_key_in_pulumis_string_form_gets_a_did_you_mean_hint():
    problems = problems_of_pulumi({f"{P}databases": "[]", f"{P}testClient": "true"})
    assert problems == (f'{P}testClient: unknown config key; did you mean "testClients"?',)


# --- every problem at once ------------------------------------------------------------------------


def test_several_problems_are_reported_together_each_at_its_key():
    values = {
        "databases": [{"name": "postgres-1", "port": 0}, {"name": "Orders", "address": "orders..example.com"}],
        "grants": [
            {"namespace": "istio-egress", "databases": ["postgres-1"]},
            {"namespace": "team-a", "databases": []},
        ],
        "testClients": "yes",
        "databse": [],
    }
    assert set(keys_of(problems_of(values))) >= {
        f"{P}databse",
        f"{P}testClients",
        f"{P}databases[0].port",
        f"{P}databases[1].name",
        f"{P}databases[1].address",
        f"{P}grants[0].namespace",
        f"{P}grants[1].databases",
    }


def test_the_error_message_lists_every_problem_and_says_nothing_was_registered():
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [{"name": "Bad"}], "testClients": "yes"})
    text = str(raised.value)
    assert text.startswith("invalid stack configuration; nothing was registered. Fix these and run again:")
    assert all(f"  - {problem}" in text for problem in raised.value.problems)
    assert len(raised.value.problems) == 2


def test_an_invalid_grant_namespace_does_not_hide_an_unknown_database_in_the_same_grant():
    values = sound(grants=[{"namespace": "Team-A", "databases": ["mysql-9"]}])
    assert f"{P}grants[0].databases[0]" in keys_of(problems_of(values))


def test_a_grant_of_a_declared_but_invalid_database_is_not_called_undeclared():
    values = {"databases": [{"name": "postgres-1", "port": 0}],
              "grants": [{"namespace": "team-a", "databases": ["postgres-1"]}]}
    assert keys_of(problems_of(values)) == [f"{P}databases[0].port"]


# --- keys stay exact when earlier entries are invalid ---------------------------------------------


def test_a_duplicate_database_name_after_an_invalid_entry_is_reported_at_its_own_index():
    values = {"databases": [{"name": "Bad"}, {"name": "postgres-1"}, {"name": "postgres-1"}]}
    message = problem_at(values, f"{P}databases[2].name")
    assert f"duplicate database name 'postgres-1' (first at {P}databases[1].name)" in message


def test_a_duplicate_grant_namespace_after_an_invalid_grant_is_reported_at_its_own_index():
    values = sound(grants=[{"namespace": "Bad", "databases": ["postgres-1"]},
                           {"namespace": "team-a", "databases": ["postgres-1"]},
                           {"namespace": "team-a", "databases": ["postgres-2"]}])
    message = problem_at(values, f"{P}grants[2].namespace")
    assert f"duplicate grant namespace 'team-a' (first at {P}grants[1].namespace)" in message


def test_an_unknown_database_after_an_invalid_grant_is_reported_at_its_own_grant():
    values = sound(grants=[{"namespace": "Bad", "databases": ["postgres-1"]},
                           {"namespace": "team-a", "databases": ["mysql-9"]}])
    assert "unknown database 'mysql-9'" in problem_at(values, f"{P}grants[1].databases[0]")


def test_an_unknown_database_after_a_wrongly_typed_entry_is_reported_at_its_own_index():
    values = sound(grants=[{"namespace": "team-a", "databases": [1, "mysql-9"]}])
    assert "unknown database 'mysql-9'" in problem_at(values, f"{P}grants[0].databases[1]")


# --- YAML oddities reaching the loader from a stack file ------------------------------------------


def _stack_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text("config:\n" + body)
    return path


def test_a_yaml_date_where_a_name_belongs_is_text_as_pulumi_reads_it_and_rejected_as_a_service_name(tmp_path):
    # Pulumi's YAML library hands a timestamp to the program as the text written.
    path = _stack_file(tmp_path, "  ambient-egress:databases:\n    - name: 2024-01-01\n")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert raised.value.problems == (f"Pulumi.test.yaml: {P}databases[0].name: must start with a letter because it "
                                     "names a Kubernetes Service (got '2024-01-01')",)


def test_a_yaml_map_with_date_keys_where_a_list_belongs_is_rejected_at_its_key(tmp_path):
    path = _stack_file(tmp_path, "  ambient-egress:databases:\n    2024-01-01: postgres-1\n")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert [problem.split(": ")[1] for problem in raised.value.problems] == [f"{P}databases"]


def test_a_self_referencing_yaml_anchor_is_rejected_naming_where_it_is(tmp_path):
    path = _stack_file(tmp_path, "  ambient-egress:databases: &loop [*loop]\n")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert raised.value.problems == ("Pulumi.test.yaml: the value at config.ambient-egress:databases.0 contains itself "
                                     "(a YAML anchor used inside itself); Pulumi cannot read that, so write the value out",)


def test_yaml_1_1_booleans_are_text_as_pulumi_reads_them_so_yes_is_no_boolean(tmp_path):
    path = _stack_file(tmp_path, "  ambient-egress:testClients: yes\n  ambient-egress:databases: []\n")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert raised.value.problems == (f"Pulumi.test.yaml: {P}testClients: must be true or false (got a string 'yes')",)


def test_yes_where_a_namespace_belongs_is_the_namespace_yes_as_pulumi_reads_it(tmp_path):
    path = _stack_file(tmp_path, "  ambient-egress:egressNamespace: yes\n  ambient-egress:databases: []\n")
    assert load_stack_file(path).egress_namespace == "yes"


def test_a_number_where_a_name_belongs_in_a_list_is_rejected_at_its_key(tmp_path):
    path = _stack_file(tmp_path, "  ambient-egress:databases:\n    - name: 12\n")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert [problem.split(": ")[1] for problem in raised.value.problems] == [f"{P}databases[0].name"]


def test_a_non_string_top_level_key_is_rejected_as_unknown():
    problems = problems_of({"databases": [], 1: "x"})
    assert keys_of(problems) == [f"{P}1"]


# --- end to end: the real program on the mock engine ----------------------------------------------


BAD_PROGRAM_CONFIGS = [
    pytest.param(sound(grants=[{"namespace": "team-a", "databases": ["mysql-9"]}]),
                 f"{P}grants[0].databases[0]: unknown database 'mysql-9'", id="unknown-database"),
    pytest.param(sound(databases=[{"name": "postgres-1", "port": 70000}]),
                 f"{P}databases[0].port: must be in 1..65535 (got 70000)", id="port"),
    pytest.param(sound(grants=[{"namespace": "db", "databases": ["postgres-1"]}]),
                 f"{P}grants[0].namespace: 'db' is the databaseNamespace", id="reserved-namespace"),
    pytest.param(sound(databse=[]), f'{P}databse: unknown config key; did you mean "databases"?', id="misspelt-key"),
    pytest.param(sound(testClients="yes"), f"{P}testClients: must be true or false", id="wrong-type"),
]


def _run_rejected(values: dict[str, Any]) -> tuple[pulumi.RunError, RecordingMocks]:
    mocks = RecordingMocks({"postgres-1": {"ip": "203.0.113.10"}, "postgres-2": {"ip": "203.0.113.11"}})
    with pytest.raises(pulumi.RunError) as raised:
        run_program(values, mocks)
    return raised.value, mocks


@pytest.mark.parametrize(("values", "words"), BAD_PROGRAM_CONFIGS)
def test_the_program_stops_on_a_bad_config_with_the_keyed_message(values, words):
    error, _ = _run_rejected(values)
    assert words in str(error)
    assert "nothing was registered" in str(error)


@pytest.mark.parametrize(("values", "words"), BAD_PROGRAM_CONFIGS)
def test_the_program_registers_no_resource_for_a_bad_config(values, words):
    _, mocks = _run_rejected(values)
    assert mocks.registered == []


def test_the_programs_run_error_carries_the_config_error_and_its_problems():
    error, _ = _run_rejected(sound(testClients="yes", egressNamespace="Egress"))
    assert isinstance(error.__cause__, ConfigError)
    assert keys_of(error.__cause__.problems) == [f"{P}egressNamespace", f"{P}testClients"]


def test_the_program_registers_the_stack_for_the_sound_config():
    mocks = RecordingMocks({"postgres-1": {"ip": "203.0.113.10"}, "postgres-2": {"ip": "203.0.113.11"}})
    program = run_program(sound(), mocks)
    assert {manifest["metadata"]["name"] for manifest in program.manifests() if manifest["kind"] == "Namespace"} == {
        "istio-egress", "db"}
    assert {manifest["metadata"]["name"] for manifest in program.patches()} == {"team-a", "team-b"}
