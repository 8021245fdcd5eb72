"""Fuzzing the config loader: every input is accepted or rejected with keyed problems, never a traceback.

Configs mix sound values with hostile ones: wrong types (booleans, numbers, null, lists and maps where
strings belong), unicode with control characters, names up to 300 characters, lists of a few hundred
entries, missing required keys, unknown keys and YAML oddities such as dates. Each strategy draws
sound configs, sound configs broken in a few spots, and configs hostile throughout, so both verdicts
are common. CI runs the profile `ci` (derandomized): the two loader properties run 500 examples each,
the narrower ones 150, and the two that run the real program on the mock engine 50 and 25.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stack import ConfigError, StackConfig, parse_config, parse_pulumi_config, pulumi_form
from tools.mock_engine import RecordingMocks, run_program


def pulumi_config_strings(values: dict[str, Any]) -> dict[str, str]:
    """Config values keyed as the Pulumi CLI keys them, in its string form."""
    return pulumi_form({f"{P}{key}": value for key, value in values.items()})

P = "ambient-egress:"
TOP_LEVEL_KEYS = ("databases", "services", "grants", "egressNamespace", "databaseNamespace", "waypointName",
                  "testClients", "trustDomain", "bypassProtection")
# The fields each list entry requires, and the same for the lists inside those entries.
REQUIRED_FIELDS = {"databases": ("name",), "services": ("name", "host", "ports"), "grants": ("namespace", "databases")}
NESTED_REQUIRED_FIELDS = {"services": {"ports": ("number",), "sampleRequests": ("method", "path")},
                          "grants": {"services": ("name",)}}
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

# --- strategies -----------------------------------------------------------------------------------

DATABASE_POOL = ("postgres-1", "postgres-2", "orders")
SERVICE_POOL = ("httpbin", "payments-api")
PROTOCOLS = ("TCP", "HTTP", "HTTPS", "TLS")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
BYPASS_FLAGS = ("serviceEntryAddresses", "databaseIngressPolicy")
MISSPELT_TOP_LEVEL_KEYS = ("databse", "grant", "test_clients", "egressnamespace", "Databases", "bypass")
NAMESPACE_POOL = ("team-a", "team-b", "rds-demo-1", "istio-egress", "db", "kube-system")

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# What a YAML stack file can hold besides JSON: dates and timestamps, and maps keyed by non-strings.
yaml_values = st.recursive(
    json_scalars | st.dates() | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8) | st.integers() | st.booleans() | st.dates(), inner, max_size=3),
    max_leaves=8,
)

unicode_text = st.text(st.characters(codec="utf-8"), max_size=300)
LOWER, DIGITS = "abcdefghijklmnopqrstuvwxyz", "0123456789"


def dns_labels(first: str, *, max_middle: int) -> st.SearchStrategy:
    """Labels `first[-a-z0-9]*[a-z0-9]`: what `st.from_regex` would give, at a fraction of the cost."""
    return st.tuples(st.sampled_from(first), st.text(LOWER + DIGITS + "-", max_size=max_middle),
                     st.sampled_from(LOWER + DIGITS)).map(lambda parts: parts[0] + (parts[1] + parts[2] if parts[1] else ""))


label_like = dns_labels(LOWER, max_middle=61)
# Characters that turn a sound name into a near miss: whitespace, control, look-alike and upper-case.
NEAR_MISS_CHARACTERS = st.sampled_from(["\n", "\r\n", " ", "\t", "\x00", "\u00e9", "\u0131", "\u200b", "-", "_", ".",
                                        "A", "\uff41"])


def near_miss(text: str, character: str, at_end: bool) -> str:
    return text + character if at_end else character + text


near_labels = st.builds(near_miss, st.sampled_from(DATABASE_POOL + NAMESPACE_POOL) | label_like, NEAR_MISS_CHARACTERS,
                        st.booleans())
long_names = st.integers(min_value=60, max_value=300).map(lambda n: ("abc-" * 80)[:n].strip("-") or "a")


def names(pool: tuple[str, ...], hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly names from `pool` (so many configs are sound), else a near miss or any hostile value."""
    good = st.sampled_from(pool)
    return st.one_of(good, good, good, label_like, near_labels, long_names, unicode_text, hostile)


addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
    st.sampled_from(["orders.example.com", "localhost", "999.1.1.1", "10.0.0", "1.2.3.4.5", "Orders.example.com",
                     "a..b", "", "example.com.", "010.1.1.1", "10.0.0.1\n", "db.example.com\n",
                     "\u0661.\u0662.\u0663.\u0664", "https://db.example.com:5432"]),
    st.lists(label_like, min_size=1, max_size=6).map(".".join),
    long_names, unicode_text,
)
ports = st.one_of(st.integers(min_value=1, max_value=65535), st.integers(), st.sampled_from([0, 65536, -1, 5432.0]),
                  st.text(st.characters(categories=["Nd"]), min_size=1, max_size=6))
booleans_or_strings = st.one_of(st.booleans(), st.sampled_from(["true", "false", "True", "yes", "on", "1", ""]))
extra_keys = st.dictionaries(
    st.sampled_from(["nme", "prot", "adress", "namespce", "databses", "serviceAccount", "Name", ""]) | st.text(max_size=12),
    st.none() | st.text(max_size=5), max_size=2)


def entries(fields: dict[str, st.SearchStrategy], hostile: st.SearchStrategy) -> st.SearchStrategy:
    """A map with any subset of `fields`, sometimes with unknown fields, sometimes not a map at all."""
    mapping = st.tuples(st.fixed_dictionaries({}, optional=fields), extra_keys | st.just({})).map(
        lambda parts: {**parts[1], **parts[0]})
    return st.one_of(mapping, mapping, mapping, hostile)


def lists_of(entry: st.SearchStrategy, hostile: st.SearchStrategy, *, huge: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(entry, max_size=4), st.lists(entry, max_size=4), huge, hostile)


def wild_configs(hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Configs built field by field, each field sound, a near miss or hostile: mostly rejected."""
    database = entries({"name": names(DATABASE_POOL, hostile), "port": ports | hostile,
                        "address": addresses | hostile}, hostile)
    service_port = entries({"number": ports | hostile,
                            "protocol": st.sampled_from((*PROTOCOLS, "http", "UDP", "")) | hostile,
                            "name": names(("http", "web"), hostile)}, hostile)
    sample_request = entries({"method": st.sampled_from((*HTTP_METHODS, "get", "FETCH")) | hostile,
                              "path": st.sampled_from(["/", "/get", "/api/*", "*.json", "*", "get", "/a*b"]) | hostile},
                             hostile)
    service = entries({
        "name": names(SERVICE_POOL + DATABASE_POOL[:1], hostile),
        "host": addresses | hostile,
        "ports": lists_of(service_port, hostile, huge=st.integers(100, 300).map(
            lambda n: [{"number": 1 + i, "protocol": PROTOCOLS[i % 4]} for i in range(n)])),
        "tlsOrigination": booleans_or_strings | hostile,
        "requestHeaders": st.dictionaries(st.sampled_from(["x-egress", "X-Upper", "bad header", ""]) | st.text(max_size=8),
                                          st.text(max_size=10) | hostile, max_size=3) | hostile,
        "sampleRequests": lists_of(sample_request, hostile, huge=st.just([{"method": "GET", "path": "/"}] * 150)),
    }, hostile)
    access = st.one_of(st.sampled_from(SERVICE_POOL), entries({
        "name": names(SERVICE_POOL, hostile),
        "methods": lists_of(st.sampled_from((*HTTP_METHODS, "get")) | hostile, hostile, huge=st.just(["GET"] * 150)),
        "paths": lists_of(st.sampled_from(["/get", "/api/*", "*", "x"]) | hostile, hostile, huge=st.just(["/"] * 150)),
        "serviceAccounts": lists_of(names(("api", "worker"), hostile), hostile, huge=st.just(["api"] * 150)),
    }, hostile))
    grant = entries({
        "namespace": names(NAMESPACE_POOL, hostile),
        "services": lists_of(access, hostile, huge=st.just(["httpbin"] * 150)),
        "databases": lists_of(names(DATABASE_POOL, hostile), hostile,
                              huge=st.integers(100, 300).map(lambda n: [DATABASE_POOL[i % 3] for i in range(n)])),
        "serviceAccounts": lists_of(names(("api", "worker"), hostile), hostile,
                                    huge=st.integers(100, 300).map(lambda n: [f"sa-{i}" for i in range(n)])),
    }, hostile)
    many_databases = st.tuples(st.integers(100, 300), st.lists(database, max_size=2)).map(
        lambda parts: [{"name": f"db-{i}", "port": 1 + i} for i in range(parts[0])] + parts[1])
    many_grants = st.tuples(st.integers(100, 300), st.lists(grant, max_size=2)).map(
        lambda parts: [{"namespace": f"ns-{i}", "databases": [f"db-{i % 7}"]} for i in range(parts[0])] + parts[1])
    bypass = entries(dict.fromkeys(BYPASS_FLAGS, booleans_or_strings | hostile), hostile)
    top_level = st.fixed_dictionaries({}, optional={
        "databases": lists_of(database, hostile, huge=many_databases),
        "services": lists_of(service, hostile, huge=st.just([{"name": "svc", "host": "a.example.com",
                                                               "ports": [{"number": 80}]}] * 150)),
        "grants": lists_of(grant, hostile, huge=many_grants),
        "egressNamespace": names(("istio-egress", "egress"), hostile),
        "databaseNamespace": names(("db", "external-dbs"), hostile),
        "waypointName": names(("waypoint",), hostile),
        "testClients": booleans_or_strings | hostile,
        "trustDomain": addresses | hostile,
        "bypassProtection": bypass,
    })
    return st.tuples(top_level, unknown_top_level_keys(hostile), st.integers(0, 9)).map(
        lambda parts: {**parts[1], **parts[0]} if parts[2] == 0 else parts[0])  # one case in ten with unknown keys


def unknown_top_level_keys(hostile: st.SearchStrategy) -> st.SearchStrategy:
    return st.dictionaries(st.sampled_from(MISSPELT_TOP_LEVEL_KEYS) | unicode_text, hostile, min_size=1, max_size=2)


service_names = st.sampled_from(DATABASE_POOL) | dns_labels(LOWER, max_middle=20)
labels = st.sampled_from((*NAMESPACE_POOL[:3], "api", "worker")) | dns_labels(LOWER + DIGITS, max_middle=20)
# All-digit dotted names read as (bad) IPv4 addresses, so a sound DNS name has a letter somewhere.
dns_names = st.lists(labels, min_size=1, max_size=4).map(".".join).filter(lambda name: not name.replace(".", "").isdigit())
sound_booleans = st.booleans() | st.sampled_from(["true", "false"])
sound_database_fields = st.fixed_dictionaries({}, optional={
    "port": st.integers(1, 65535), "address": st.ip_addresses(v=4).map(str) | dns_names})
sound_hosts = st.ip_addresses(v=4).map(str) | dns_names
sound_port_numbers = st.lists(st.integers(1, 65535), min_size=1, max_size=2, unique=True)
sound_methods = st.lists(st.sampled_from(HTTP_METHODS), min_size=1, max_size=2, unique=True)
sound_service_accounts = st.lists(labels, min_size=1, max_size=3, unique=True)
sound_top_level_extras = st.fixed_dictionaries({}, optional={
    "waypointName": labels, "testClients": sound_booleans, "trustDomain": dns_names,
    "bypassProtection": st.fixed_dictionaries({}, optional=dict.fromkeys(BYPASS_FLAGS, sound_booleans)),
})
huge_counts = st.integers(100, 300)


@st.composite
def sound_configs(draw, *, max_entries: int = 4, huge: bool = True) -> dict[str, Any]:
    """A config the contract accepts, up to a few hundred entries, with optional keys left out at random."""
    config: dict[str, Any] = {}
    egress, database_ns = "istio-egress", "db"
    if draw(st.booleans()):
        egress, database_ns = draw(st.lists(labels, min_size=2, max_size=2, unique=True))
        config.update(egressNamespace=egress, databaseNamespace=database_ns)

    count = draw(st.integers(0, max_entries) | huge_counts) if huge else draw(st.integers(0, max_entries))
    if count > max_entries:
        database_names = [f"db-{i}" for i in range(count)]
    else:
        database_names = draw(st.lists(service_names, min_size=count, max_size=count, unique=True))
    databases = []
    for name in database_names:
        entry: dict[str, Any] = {"name": name}
        if count <= max_entries:
            entry.update(draw(sound_database_fields))
        databases.append(entry)
    config["databases"] = databases

    service_names_drawn = [name for name in draw(st.lists(service_names, max_size=2, unique=True))
                           if name not in database_names]
    services, http_services = [], []
    for name in service_names_drawn:
        numbers = draw(sound_port_numbers)
        protocols = [draw(st.sampled_from(PROTOCOLS)) for _ in numbers]
        services.append({"name": name, "host": draw(sound_hosts),
                         "ports": [{"number": number, "protocol": protocol}
                                   for number, protocol in zip(numbers, protocols, strict=True)]})
        if "HTTP" in protocols:
            http_services.append(name)
    if services:
        config["services"] = services

    def service_access(name: str) -> Any:
        if name in http_services and draw(st.booleans()):
            return {"name": name, "methods": draw(sound_methods)}
        return name

    reserved = {egress, database_ns, "kube-system", "kube-public", "kube-node-lease", "istio-system"}
    grant_count = 0
    if databases:
        grant_count = draw(st.integers(0, max_entries) | huge_counts) if huge else draw(st.integers(0, max_entries))
    if grant_count > max_entries:
        namespaces = [f"ns-{i}" for i in range(grant_count) if f"ns-{i}" not in reserved]
    else:
        namespaces = [ns for ns in draw(st.lists(labels, max_size=grant_count, unique=True)) if ns not in reserved]
    grants = []
    for index, namespace in enumerate(namespaces):
        if grant_count > max_entries:
            grant: dict[str, Any] = {"namespace": namespace, "databases": [database_names[index % len(database_names)]]}
        else:
            grant = {"namespace": namespace, "databases": draw(st.lists(
                st.sampled_from(database_names), min_size=1, max_size=min(3, len(database_names)), unique=True))}
            if services and draw(st.booleans()):
                chosen = draw(st.lists(st.sampled_from(service_names_drawn), min_size=1, unique=True))
                grant["services"] = [service_access(name) for name in chosen]
            if draw(st.booleans()):
                grant["serviceAccounts"] = draw(sound_service_accounts)
        grants.append(grant)
    if grants or draw(st.booleans()):
        config["grants"] = grants

    config.update(draw(sound_top_level_extras))
    return config


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) inside a config, so a mutation can land anywhere."""
    places = []
    if isinstance(value, dict):
        for key, item in value.items():
            places.append((value, key))
            places.extend(_places(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places.append((value, index))
            places.extend(_places(item))
    return places


@st.composite
def mutated(draw, base: st.SearchStrategy, hostile: st.SearchStrategy) -> dict[str, Any]:
    """A sound config with one to three spots broken: a value replaced or nudged, an entry repeated,
    a key removed or added."""
    config = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        places = _places(config)
        how = draw(st.sampled_from(["replace", "replace", "nudge", "repeat", "remove", "add"]))
        lists = [container[key] for container, key in places if isinstance(container[key], list) and container[key]]
        if how == "repeat" and lists:
            repeated = lists[draw(st.integers(0, len(lists) - 1))]
            repeated.append(copy.deepcopy(repeated[draw(st.integers(0, len(repeated) - 1))]))
            continue
        strings = [(container, key) for container, key in places if isinstance(container[key], str)]
        if how == "nudge" and strings:
            container, key = strings[draw(st.integers(0, len(strings) - 1))]
            container[key] = near_miss(container[key], draw(NEAR_MISS_CHARACTERS), draw(st.booleans()))
            continue
        if how == "add" or not places:
            maps = [config] + [item for item in (c[k] for c, k in places) if isinstance(item, dict)]
            target = maps[draw(st.integers(0, len(maps) - 1))]
            target[draw(st.sampled_from((*MISSPELT_TOP_LEVEL_KEYS, "nme", "prot", "databses", "namespce"))
                        | st.text(max_size=12))] = draw(hostile)
            continue
        container, key = places[draw(st.integers(0, len(places) - 1))]
        if how == "remove":
            del container[key]
        else:
            container[key] = draw(st.one_of(hostile, near_labels, long_names, addresses, ports))
    return config


def evenly(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    """One of `strategies`, each as likely (`st.one_of` lets a rich branch crowd out the others)."""
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


def configs(hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Sound configs, sound configs with a few spots broken, and configs hostile throughout."""
    sound = sound_configs()
    return evenly(sound, mutated(sound, hostile), wild_configs(hostile))


yaml_configs = configs(yaml_values)
json_configs = configs(json_values)


# --- oracles --------------------------------------------------------------------------------------


def parse_or_problems(parse, values) -> StackConfig | tuple[str, ...]:
    try:
        config = parse(values)
    except ConfigError as error:
        event("rejected")
        return error.problems
    event("accepted")
    return config


def key_paths(values: dict[Any, Any]) -> dict[str, Any]:
    """Every key a problem may name: each value's path, and each required field's path under its entry."""
    paths: dict[str, Any] = {f"{P}databases": values.get("databases")}

    def walk(path: str, value: Any, required: tuple[str, ...], nested: dict[str, tuple[str, ...]]) -> None:
        paths[path] = value
        if isinstance(value, dict):
            for name in required:
                paths.setdefault(f"{path}.{name}", value.get(name))
            for name, item in value.items():
                if not isinstance(name, str):  # a problem with a non-string key names the map or the key as text
                    paths.setdefault(f"{path}.{name}", item)
                walk(f"{path}.{name}" if isinstance(name, str) else path, item, nested.get(name, ()), {})
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{path}[{index}]", item, required, nested)

    for name, value in values.items():
        walk(f"{P}{name}", value, REQUIRED_FIELDS.get(name, ()), NESTED_REQUIRED_FIELDS.get(name, {}))
    return paths


def named_key(problem: str, paths: dict[str, Any]) -> str | None:
    """The longest known key that `problem` starts with, followed by ': '."""
    candidates = [key for key in paths if problem.startswith(f"{key}: ")]
    return max(candidates, key=len) if candidates else None


# Problems that quote the value held at their key.
NAMING_VALUE = ("duplicate database name ", "duplicate database or service name ", "duplicate grant namespace ",
                "duplicate database ", "duplicate service account ", "unknown database ", "unknown service ")


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(yaml_configs)
def test_parse_config_accepts_or_rejects_every_config_with_problems_keyed_by_the_project(values):
    outcome = parse_or_problems(parse_config, values)
    if not isinstance(outcome, StackConfig):
        assert outcome, "a ConfigError must carry at least one problem"
        assert all(problem.startswith(P) for problem in outcome), outcome


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_configs)
def test_every_problem_names_a_key_that_the_config_has_or_requires(values):
    outcome = parse_or_problems(parse_config, values)
    if isinstance(outcome, StackConfig):
        return
    paths = key_paths(values)
    for problem in outcome:
        assert named_key(problem, paths) is not None, problem


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_configs)
def test_a_duplicate_or_unknown_database_problem_names_the_key_that_holds_that_value(values):
    outcome = parse_or_problems(parse_config, values)
    if isinstance(outcome, StackConfig):
        return
    paths = key_paths(values)
    for problem in outcome:
        key = named_key(problem, paths)
        message = problem[len(key) + 2:] if key else ""
        if message.startswith(NAMING_VALUE):
            value = paths[key]
            value = value.get("name") if isinstance(value, dict) else value  # a grant's service access map
            assert any(message.startswith(f"{words}{shown(value)}") for words in NAMING_VALUE), problem


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_configs)
def test_an_accepted_config_grants_only_databases_it_declares(values):
    outcome = parse_or_problems(parse_config, values)
    if isinstance(outcome, StackConfig):
        declared = {database.name for database in outcome.databases}
        assert all(set(grant.databases) <= declared for grant in outcome.grants)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_configs)
def test_an_accepted_config_holds_only_valid_kubernetes_names(values):
    outcome = parse_or_problems(parse_config, values)
    if not isinstance(outcome, StackConfig):
        return
    labels = [outcome.egress_namespace, outcome.database_namespace, outcome.waypoint_name]
    labels += [grant.namespace for grant in outcome.grants]
    labels += [account for grant in outcome.grants for account in grant.service_accounts]
    assert all(DNS1123_LABEL.fullmatch(label) and len(label) <= 63 for label in labels), labels
    assert all(DNS1035_LABEL.fullmatch(database.name) and len(database.name) <= 63
               for database in outcome.databases), outcome.databases


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_configs)
def test_an_accepted_config_holds_only_ipv4_addresses_or_dns_names(values):
    outcome = parse_or_problems(parse_config, values)
    if not isinstance(outcome, StackConfig):
        return
    for address in [database.address for database in outcome.databases if database.address] + [outcome.trust_domain]:
        assert len(address) <= 253 and all(DNS1123_LABEL.fullmatch(label) and len(label) <= 63
                                           for label in address.split(".")), address


STRUCTURED_KEYS = ("databases", "services", "grants", "bypassProtection")  # JSON text in Pulumi's string form
# Raw values as Pulumi hands them over: any text, JSON of hostile configs, and JSON oddities.
raw_texts = st.one_of(
    unicode_text,
    st.sampled_from(["true", "false", "True", "null", "[]", "{}", "NaN", "-Infinity", "1e400", "[{", "\"db\"",
                     "[{\"name\": \"postgres-1\"}]", "[{\"namespace\": \"team-a\", \"databases\": [\"postgres-1\"]}]"]),
    json_values.map(json.dumps),
    (st.sampled_from([500, 990, 1000, 5000, 100_000]) | st.integers(1, 3000)).map(lambda depth: "[" * depth + "]" * depth),
)
raw_keys = st.one_of(
    st.sampled_from([f"{P}{key}" for key in TOP_LEVEL_KEYS]),
    st.sampled_from([f"{P}databse", f"{P}testClient", "kubernetes:context", "other:databases", P]),
    unicode_text.map(lambda name: P + name),
    unicode_text,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(evenly(
    st.dictionaries(raw_keys, raw_texts, max_size=6),
    st.dictionaries(st.sampled_from([f"{P}{key}" for key in STRUCTURED_KEYS]), raw_texts, max_size=3),
    json_configs.map(pulumi_config_strings),
    st.tuples(json_configs.map(pulumi_config_strings), st.dictionaries(raw_keys, raw_texts, max_size=3)).map(
        lambda parts: {**parts[0], **parts[1]}),
))
def test_parse_pulumi_config_accepts_or_rejects_any_strings_with_problems_keyed_by_the_project(raw):
    outcome = parse_or_problems(parse_pulumi_config, raw)
    if not isinstance(outcome, StackConfig):
        # A key of another namespace is named as it is: a misspelt namespace, or one missing.
        foreign = tuple(f"{key or repr(key)}: " for key in raw if not key.startswith(P))
        assert outcome and all(problem.startswith((P, *foreign)) for problem in outcome), outcome


# --- the real program on the mock engine: small configs, so each run takes milliseconds ----------------

small_json = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=2), max_leaves=3)
small_sound_configs = sound_configs(max_entries=3, huge=False)
wild_program_configs = st.fixed_dictionaries({
    "databases": st.lists(entries({"name": st.sampled_from(DATABASE_POOL) | small_json,
                                   "port": st.sampled_from([5432, 6432, 0]) | small_json,
                                   "address": st.sampled_from(["10.20.30.40", "orders.example.com", "Bad_Host"])},
                                  small_json), max_size=3)}, optional={
    "grants": st.lists(entries({
        "namespace": st.sampled_from(NAMESPACE_POOL) | small_json,
        "databases": st.lists(st.sampled_from((*DATABASE_POOL, "mysql-9")) | small_json, max_size=3),
        "serviceAccounts": st.lists(st.sampled_from(["api", "Bad"]), max_size=2),
    }, small_json), max_size=3),
    "testClients": booleans_or_strings,
    "egressNamespace": st.sampled_from(["istio-egress", "egress", "Egress"]) | small_json,
    "bypassProtection": entries({"databaseIngressPolicy": booleans_or_strings}, small_json),
    "egressLockdown": entries({"enabled": booleans_or_strings,
                               "allowCidrs": st.lists(st.sampled_from(["10.0.0.1", "10.0.0.1/8", "x"]))}, small_json),
    "databse": small_json,
})


def every_stand_in_has_an_ip(values: dict[str, Any]) -> RecordingMocks:
    """Mocks whose cloud gives each declared database's LoadBalancer an address, as `pulumi up` needs."""
    declared = values.get("databases") if isinstance(values.get("databases"), list) else []
    database_names = [entry["name"] for entry in declared
                      if isinstance(entry, dict) and isinstance(entry.get("name"), str)]
    return RecordingMocks({name: {"ip": "203.0.113.10"} for name in database_names})


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(evenly(mutated(small_sound_configs, small_json), wild_program_configs))
def test_the_program_registers_no_resource_for_a_config_the_loader_rejects(values):
    expected = parse_or_problems(parse_pulumi_config, pulumi_config_strings(values))
    mocks = every_stand_in_has_an_ip(values)
    if isinstance(expected, StackConfig):
        run_program(values, mocks)  # a sound mutation: the run must simply succeed
        return
    with pytest.raises(pulumi.RunError) as raised:
        run_program(values, mocks)
    assert isinstance(raised.value.__cause__, ConfigError) and raised.value.__cause__.problems == expected
    assert mocks.registered == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(small_sound_configs)
def test_the_program_registers_the_egress_namespace_for_a_config_the_loader_accepts(values):
    config = parse_pulumi_config(pulumi_config_strings(values))
    mocks = every_stand_in_has_an_ip(values)
    program = run_program(values, mocks)
    namespaces = {manifest["metadata"]["name"] for manifest in program.manifests() if manifest["kind"] == "Namespace"}
    assert config.egress_namespace in namespaces
