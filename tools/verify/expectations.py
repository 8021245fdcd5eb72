"""What the cluster should do: the verdicts of a deployed stack (its `pulumi stack output`) or of a
plan (`make plan`'s plan.json), read into one model. Never the local stack file, which may have
moved on since the deployment.

A source that lacks something a check needs makes that check a skip with a note, never a pass.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import Decision
from analysis.matrix import client_identity
from components.values import POSTGRES_PORT_NAME, database_port, is_ipv4
from tools.plan.build import DOCUMENTATION_NETWORKS
from tools.plan.report import FORMAT as PLAN_FORMAT

from .kubectl import CannotVerify
from .process import COMMAND_NOT_FOUND, Executor, failure

ALLOW, DENY, LIMITED, OPEN = Decision.ALLOW.value, Decision.DENY.value, Decision.LIMITED.value, Decision.OPEN.value
VERDICTS = frozenset(decision.value for decision in Decision)
DATABASE = "database"
PULUMI_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str
    """TCP, HTTP, HTTPS or TLS; empty when the source does not say."""
    name: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    service_entry: str
    """`namespace/name` of its ServiceEntry."""
    hosts: tuple[str, ...]
    addresses: tuple[str, ...] = ()
    """IPv4 addresses clients may dial directly; CIDRs are not dialled."""
    ports: tuple[Port, ...] = ()
    unusable: str | None = None
    """Why its hosts and addresses cannot be dialled, if they cannot."""

    @property
    def namespace(self) -> str:
        return self.service_entry.partition("/")[0]

    def speaks_postgres(self, port: Port) -> bool:
        """A port named for PostgreSQL, or a database's port whose name names no engine (the
        components name a database port after its engine when its number tells it)."""
        unnamed = port.name in ("", f"tcp-{port.number}")
        return port.name == POSTGRES_PORT_NAME or (self.kind == DATABASE and unnamed)


@dataclass(frozen=True)
class SampleRequest:
    client: str
    target: str
    method: str
    path: str
    expected: str


@dataclass(frozen=True)
class Expectations:
    source: str
    stack: str
    egress_namespace: str
    waypoint: str | None
    """`namespace/name` of the waypoint Gateway, when the source names it."""
    clients: tuple[str, ...]
    targets: tuple[Target, ...]
    verdicts: Mapping[tuple[str, str, int], str]
    """(client, target, port) → verdict; a cell the source gives no verdict for is absent."""
    samples: tuple[SampleRequest, ...] = ()
    undeclared: Mapping[str, str] = field(default_factory=dict)
    """client → DENY (locked down) or OPEN, for destinations no ServiceEntry declares."""
    lockdown_cidrs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """client → CIDRs its lockdown still lets through."""
    notes: tuple[str, ...] = ()

    def undeclared_verdict(self, client: str, host: str) -> tuple[str | None, str | None]:
        """What a client reaching `host` outside every ServiceEntry should see, and why it is not DENY."""
        verdict = self.undeclared.get(client)
        if verdict == DENY and is_ipv4(host):
            address = ipaddress.IPv4Address(host)
            inside = [cidr for cidr in self.lockdown_cidrs.get(client, ()) if address in ipaddress.IPv4Network(cidr)]
            if inside:
                return OPEN, f"{host} is in the lockdown's allowCidrs ({', '.join(inside)})"
        return verdict, None


class _Document:
    """A JSON document read with the name of where each value came from, for error messages."""

    def __init__(self, origin: str, fix: str):
        self.origin, self.fix = origin, fix

    def fail(self, where: str, problem: str) -> CannotVerify:
        return CannotVerify(f"{self.origin}: {where} {problem}; {self.fix}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a map (got {type(value).__name__})")
        return value

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list (got {type(value).__name__})")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string (got {value!r})")
        return value

    def each(self, value: Any, where: str) -> Iterator[tuple[dict[str, Any], str]]:
        """The maps of a list, each with where it is."""
        for index, item in enumerate(self.items(value, where)):
            yield self.mapping(item, f"{where}[{index}]"), f"{where}[{index}]"

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(self.text(item, f"{where}[{index}]") for index, item in enumerate(self.items(value, where)))

    def port_number(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(where, f"must be a port number 1-65535 (got {value!r})")
        return value

    def cidrs(self, value: Any, where: str) -> tuple[str, ...]:
        found = []
        for index, text in enumerate(self.texts(value, where)):
            try:
                found.append(str(ipaddress.IPv4Network(text, strict=False)))
            except ValueError:
                raise self.fail(f"{where}[{index}]", f"is no IPv4 CIDR (got {text!r})") from None
        return tuple(found)

    def verdict(self, value: Any, where: str, allowed: frozenset[str] = VERDICTS) -> str:
        if value not in allowed:
            raise self.fail(where, f"is {value!r}, expected one of {', '.join(sorted(allowed))}")
        return str(value)

    def require(self, document: Mapping[str, Any], *keys: str) -> None:
        missing = [key for key in keys if key not in document]
        if missing:
            raise self.fail(", ".join(missing), "missing")


# --- plan.json ------------------------------------------------------------------------------------

def load_plan(path: Path) -> Expectations:
    """The verdicts `make plan` computed, from its plan.json."""
    fix = f"re-run `make plan` to write {path} again"
    if not path.is_file():
        raise CannotVerify(f"no plan file {path}: run `make plan STACK=<stack>` first, or drop --plan to verify "
                           "against the deployed stack's outputs")
    try:
        raw = json.loads(path.read_text())
    except OSError as error:
        raise CannotVerify(f"{path} cannot be read ({error.strerror or error}); {fix}") from None
    except UnicodeDecodeError:
        raise CannotVerify(f"{path} is not UTF-8 text; {fix}") from None
    except ValueError as error:
        raise CannotVerify(f"{path} is not JSON ({error}); {fix}") from None
    document = _Document(str(path), fix)
    plan = document.mapping(raw, "the document")
    if plan.get("format") != PLAN_FORMAT:
        raise document.fail("format", f"is {plan.get('format')!r}, expected {PLAN_FORMAT!r} "
                                       "(written by another version of make plan?)")
    document.require(plan, "stack", "clients", "targets", "verdicts")
    # The stand-ins whose LoadBalancer address the plan made up, by name (tools/plan writes them).
    placeholders = document.mapping(plan.get("placeholderAddresses", {}), "placeholderAddresses")
    targets = tuple(_target(document, entry, where, placeholders) for entry, where in document.each(plan["targets"], "targets"))
    clients = document.texts(plan["clients"], "clients")
    verdicts = _plan_verdicts(document, document.mapping(plan["verdicts"], "verdicts"), targets)
    samples = _samples(document, plan.get("sampleRequests", []), "computed")
    others = document.mapping(plan.get("otherDestinations", {}), "otherDestinations")
    undeclared = {client: document.verdict(verdict, f"otherDestinations.{client}") for client, verdict in others.items()}
    waypoint = plan.get("waypoint")
    notes = []
    if waypoint is None:
        notes.append(f"{path} names no waypoint: every Gateway of the project in the egress namespace is checked instead")
    if "otherDestinations" not in plan:
        notes.append(f"{path} has no otherDestinations: undeclared destinations are not checked")
    egress = sorted({target.namespace for target in targets})
    return Expectations(
        source=f"plan {path}", stack=document.text(plan["stack"], "stack"),
        egress_namespace=egress[0] if egress else "",
        waypoint=document.text(waypoint, "waypoint") if waypoint is not None else None,
        clients=clients, targets=targets, verdicts=verdicts, samples=samples, undeclared=undeclared, notes=tuple(notes),
    )


def _samples(document: _Document, value: Any, verdict_key: str) -> tuple[SampleRequest, ...]:
    """Sample requests, expecting the verdict under `verdict_key` (computed in a plan, declared in outputs)."""
    return tuple(
        SampleRequest(client=document.text(entry.get("client"), f"{where}.client"),
                      target=document.text(entry.get("target"), f"{where}.target"),
                      method=document.text(entry.get("method"), f"{where}.method"),
                      path=document.text(entry.get("path"), f"{where}.path"),
                      expected=document.verdict(entry.get(verdict_key), f"{where}.{verdict_key}"))
        for entry, where in document.each(value, "sampleRequests")
    )


def _target(document: _Document, value: Any, where: str, placeholders: Mapping[str, Any]) -> Target:
    entry = document.mapping(value, where)
    document.require(entry, "name", "serviceEntry", "hosts", "ports")
    ports = tuple(
        Port(number=document.port_number(port.get("number"), f"{at}.number"),
             protocol=document.text(port.get("protocol", "TCP"), f"{at}.protocol"), name=str(port.get("name", "")))
        for port, at in document.each(entry["ports"], f"{where}.ports")
    )
    hosts = document.texts(entry["hosts"], f"{where}.hosts")
    addresses = tuple(address for address in document.texts(entry.get("addresses", []), f"{where}.addresses") if is_ipv4(address))
    name = document.text(entry["name"], f"{where}.name")
    made_up = [str(placeholders[name])] if name in placeholders else []
    made_up += [value for value in (*addresses, *(host.removesuffix(".nip.io") for host in hosts))
                if is_ipv4(value) and any(ipaddress.IPv4Address(value) in net for net in DOCUMENTATION_NETWORKS)]
    unusable = None
    if made_up:
        unusable = (f"its address {made_up[0]} is a placeholder `make plan` wrote, not its LoadBalancer's: re-run make plan "
                    f"with --lb {name}=<EXTERNAL-IP>, or verify against the stack outputs")
    return Target(name=name, kind=str(entry.get("kind", "service")),
                  service_entry=document.text(entry["serviceEntry"], f"{where}.serviceEntry"),
                  hosts=hosts, addresses=addresses, ports=ports, unusable=unusable)


def _plan_verdicts(document: _Document, rows: Mapping[str, Any], targets: Sequence[Target]) -> dict[tuple[str, str, int], str]:
    """Destinations are `namespace/name`, or `namespace/name:port` for a ServiceEntry of several ports."""
    verdicts = {}
    for client, row in rows.items():
        cells = document.mapping(row, f"verdicts.{client}")
        for target in targets:
            for port in target.ports:
                key = next((key for key in (f"{target.service_entry}:{port.number}", target.service_entry) if key in cells), None)
                if key is not None:
                    verdicts[(client, target.name, port.number)] = document.verdict(cells[key], f"verdicts.{client}.{key}")
    return verdicts


# --- pulumi stack output ----------------------------------------------------------------------------

def load_stack_outputs(stack: str, executor: Executor, project_dir: Path) -> Expectations:
    """The verdicts the deployed stack exports, read with `pulumi stack output --json`."""
    argv = ["pulumi", "stack", "output", "--json", "--non-interactive", "--stack", stack, "--cwd", str(project_dir)]
    run = executor.run(argv, PULUMI_TIMEOUT_SECONDS)
    instead = f"or verify against a plan with --plan build/plan/{stack}/plan.json"
    if run.exit_code == COMMAND_NOT_FOUND:
        raise CannotVerify(f"the pulumi CLI is not installed or not on PATH (https://www.pulumi.com/docs/install/), {instead}")
    if run.timed_out:
        raise CannotVerify(f"`pulumi stack output` gave no answer within {PULUMI_TIMEOUT_SECONDS}s, {instead}")
    if run.exit_code != 0:
        raise CannotVerify(f"`pulumi stack output --stack {stack}` failed: {failure(run)}. Is the stack deployed, and "
                           f"PULUMI_BACKEND_URL (or pulumi login) pointing at its backend? Else {instead}")
    document = _Document(f"stack {stack!r} outputs", f"run `pulumi up --stack {stack}` with the current program")
    try:
        outputs = document.mapping(json.loads(run.stdout), "the document")
    except ValueError:
        raise CannotVerify(f"`pulumi stack output --json` printed no JSON: {failure(run)}") from None
    if not outputs:
        raise CannotVerify(f"stack {stack!r} has no outputs: run `pulumi up --stack {stack}` first")
    if "egressGateway" in outputs and "waypoint" not in outputs:
        raise CannotVerify(f"stack {stack!r} runs in sidecar mode (it exports egressGateway, no waypoint): make verify "
                           "proves ambient stacks, whose waypoint, bindings and ztunnel behaviour it checks")
    document.require(outputs, "egressNamespace", "accessMatrix")
    egress = document.text(outputs["egressNamespace"], "egressNamespace")
    notes: list[str] = []
    targets = _output_targets(document, outputs, egress, notes)
    matrix = document.mapping(outputs["accessMatrix"], "accessMatrix")
    verdicts = {}
    for client, row in matrix.items():
        granted = document.mapping(row, f"accessMatrix.{client}")
        for target in targets:
            verdict = document.verdict(granted.get(target.name, DENY), f"accessMatrix.{client}.{target.name}",
                                       frozenset({ALLOW, LIMITED, DENY}))
            verdicts.update({(client, target.name, port.number): verdict for port in target.ports})
    samples: tuple[SampleRequest, ...] = ()
    if "sampleRequests" in outputs:
        samples = _samples(document, outputs["sampleRequests"], "declared")
    else:
        notes.append("stack output sampleRequests is absent: HTTP sample requests and LIMITED cells are not checked")
    undeclared, cidrs = _lockdowns(document, outputs, tuple(matrix), notes)
    waypoint = outputs.get("waypoint")
    return Expectations(
        source=f"the outputs of stack {stack!r}", stack=stack, egress_namespace=egress,
        waypoint=f"{egress}/{document.text(waypoint, 'waypoint')}" if waypoint is not None else None,
        clients=tuple(matrix), targets=targets, verdicts=verdicts, samples=samples, undeclared=undeclared,
        lockdown_cidrs=cidrs, notes=tuple(notes),
    )


def _output_targets(document: _Document, outputs: Mapping[str, Any], egress: str, notes: list[str]) -> tuple[Target, ...]:
    """The `targets` output (the plan's shape); without it, what `databases` and `services` say."""
    if "targets" in outputs:
        return tuple(_target(document, entry, where, {}) for entry, where in document.each(outputs["targets"], "targets"))
    notes.append("stack output targets is absent: raw-IP connections are not checked, and services' ports, whose "
                 "protocols only it gives, are skipped")
    targets = []
    for name, entry in document.mapping(outputs.get("databases", {}), "databases").items():
        entry = document.mapping(entry, f"databases.{name}")
        number = document.port_number(entry.get("port"), f"databases.{name}.port")
        # A database's ServiceEntry port is named as the components name it, from its number.
        targets.append(Target(name=name, kind=DATABASE, service_entry=f"{egress}/{name}",
                              hosts=(document.text(entry.get("host"), f"databases.{name}.host"),),
                              ports=(Port(number, "TCP", database_port(number).port_name),)))
    for name, entry in document.mapping(outputs.get("services", {}), "services").items():
        entry = document.mapping(entry, f"services.{name}")
        numbers = document.items(entry.get("ports"), f"services.{name}.ports")
        targets.append(Target(name=name, kind="service", service_entry=f"{egress}/{name}",
                              hosts=(document.text(entry.get("host"), f"services.{name}.host"),),
                              ports=tuple(Port(document.port_number(number, f"services.{name}.ports[{index}]"), "")
                                          for index, number in enumerate(numbers))))
    return tuple(targets)


def _lockdowns(document: _Document, outputs: Mapping[str, Any], clients: Sequence[str],
               notes: list[str]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    if "egressLockdown" not in outputs:
        notes.append("stack output egressLockdown is absent: undeclared destinations are not checked")
        return {}, {}
    lockdowns = document.mapping(outputs["egressLockdown"], "egressLockdown")
    undeclared, cidrs = {}, {}
    for client in clients:
        namespace, _ = client_identity(client)
        if namespace not in lockdowns:
            continue
        lockdown = document.mapping(lockdowns[namespace], f"egressLockdown.{namespace}")
        enabled = lockdown.get("enabled")
        if not isinstance(enabled, bool):
            raise document.fail(f"egressLockdown.{namespace}.enabled", f"must be true or false (got {enabled!r})")
        undeclared[client] = DENY if enabled else OPEN
        cidrs[client] = document.cidrs(lockdown.get("allowCidrs", []), f"egressLockdown.{namespace}.allowCidrs")
    return undeclared, cidrs
