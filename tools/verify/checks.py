"""Every check a verification runs, what it proves, and running them from the test client pods.

One check per (client, target, port) through each host and each raw IP, one per HTTP sample
request, and one undeclared destination per client. A client is the matrix row its namespace's
test client pod runs as: the pod's service account's row, else the namespace's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import Enum
from typing import TextIO

from analysis.matrix import client_identity, client_name
from components.manifests import TEST_CLIENT_NAME
from stack import PROJECT

from .expectations import ALLOW, DENY, LIMITED, OPEN, Expectations, Port, SampleRequest, Target
from .kubectl import Kubectl
from .probes import HttpRequest, Observation, Outcome, PgIsReady, Probe, TcpConnect, observe

Clock = Callable[[], float]
UNDECLARED_VIA = "undeclared"


class Rule(Enum):
    CONNECT = "must connect"
    REFUSE = "must not connect"
    OBSERVE = "reported only"


class Result(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"
    INFO = "INFO"
    """Observed and reported, never judged."""


_RULES = {ALLOW: Rule.CONNECT, OPEN: Rule.CONNECT, DENY: Rule.REFUSE}
_UNJUDGED = {
    LIMITED: "LIMITED: only some HTTP requests are allowed; declare sampleRequests to check them",
    "BYPASS": "BYPASS: the plan found a way around the waypoint; fix its findings, then verify",
    "UNDECIDED": "UNDECIDED: the plan cannot tell what the mesh does here",
}


@dataclass(frozen=True)
class Check:
    client: str
    namespace: str
    target: str
    via: str
    """host, ip, a request such as `GET /get`, or undeclared."""
    expected: str
    rule: Rule
    probe: Probe | None = None
    unprobed: tuple[Result, str] | None = None
    """(SKIP or ERROR, why) when nothing is run."""

    @property
    def endpoint(self) -> str:
        return self.probe.endpoint if self.probe else "-"


@dataclass(frozen=True)
class CheckResult:
    check: Check
    result: Result
    observation: Observation | None
    seconds: float | None
    """None when nothing ran."""

    @property
    def detail(self) -> str:
        if self.observation is not None:
            return self.observation.detail
        return self.check.unprobed[1] if self.check.unprobed else ""


@dataclass(frozen=True)
class Undeclared:
    """The destination outside every ServiceEntry each client tries, as HOST:PORT."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


# --- the test client pods ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientPod:
    namespace: str
    row: str | None
    """The matrix row it speaks for; None when it cannot run."""
    problem: str | None = None


def client_pods(kubectl: Kubectl, expectations: Expectations) -> list[ClientPod]:
    """The pod in each client namespace, and the row its service account makes it."""
    found = []
    for namespace in dict.fromkeys(client_identity(client)[0] for client in expectations.clients):
        read = kubectl.get("pod", TEST_CLIENT_NAME, namespace=namespace)
        where = f"test client pod {namespace}/{TEST_CLIENT_NAME}"
        if read.not_found:
            found.append(ClientPod(namespace, None, f"{where} not found: set {PROJECT}:testClients: true and run pulumi up"))
            continue
        if read.document is None:
            found.append(ClientPod(namespace, None, f"{where}: {read.problem}"))
            continue
        conditions = read.document.get("status", {}).get("conditions", [])
        if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            phase = read.document.get("status", {}).get("phase", "unknown")
            found.append(ClientPod(namespace, None, f"{where} is not Ready (phase {phase}): kubectl describe pod -n "
                                                     f"{namespace} {TEST_CLIENT_NAME}"))
            continue
        account = read.document.get("spec", {}).get("serviceAccountName") or "default"
        own = client_name(namespace, account)
        found.append(ClientPod(namespace, own if own in expectations.clients else namespace))
    return found


# --- planning -----------------------------------------------------------------------------------------

def plan_checks(expectations: Expectations, clients: Sequence[ClientPod], undeclared: Undeclared | None) -> list[Check]:
    """Every check, client by client, each target's ports through its hosts and then its raw IPs."""
    checks = []
    for client in clients:
        rows = [row for row in expectations.clients if client_identity(row)[0] == client.namespace]
        for row in rows if client.row is None else [client.row]:
            checks += _client_checks(expectations, client, row, undeclared)
    return checks


def _client_checks(expectations: Expectations, client: ClientPod, row: str, undeclared: Undeclared | None) -> list[Check]:
    checks = [check for target in expectations.targets for check in _cell_checks(expectations, client, row, target)]
    checks += [_sample_check(expectations, client, sample) for sample in expectations.samples if sample.client == row]
    if undeclared is not None:
        checks.append(_undeclared_check(expectations, client, row, undeclared))
    if client.problem is not None:
        checks = [_with(check, unprobed=(Result.ERROR, client.problem)) for check in checks]
    return checks


def _cell_checks(expectations: Expectations, client: ClientPod, row: str, target: Target) -> Iterator[Check]:
    sampled = any(sample.client == row and sample.target == target.name for sample in expectations.samples)
    for port in target.ports:
        verdict = expectations.verdicts.get((row, target.name, port.number))
        label = f"{target.name}:{port.number}" if len(target.ports) > 1 else target.name
        if verdict == LIMITED and sampled:
            continue  # its sample requests check it
        unprobed = _unprobed(expectations, verdict, target, port)
        rule = _RULES.get(verdict or "", Rule.OBSERVE)
        for via, address in [*(("host", host) for host in target.hosts), *(("ip", ip) for ip in target.addresses)]:
            yield Check(row, client.namespace, label, via, verdict or "-", rule,
                        probe=None if unprobed else _probe(target, address, port), unprobed=unprobed)


def _unprobed(expectations: Expectations, verdict: str | None, target: Target, port: Port) -> tuple[Result, str] | None:
    if verdict is None:
        return Result.SKIP, f"{expectations.source} gives no verdict for this cell"
    if verdict in _UNJUDGED:
        return Result.SKIP, _UNJUDGED[verdict]
    if target.unusable:
        return Result.ERROR, target.unusable
    if not port.protocol:
        return Result.SKIP, (f"{expectations.source} does not say which protocol port {port.number} speaks; export the "
                             "targets output to check it")
    return None


def _probe(target: Target, address: str, port: Port) -> Probe:
    if target.speaks_postgres(port):
        return PgIsReady(address, port.number)
    if port.protocol == "HTTP":
        return HttpRequest(address, port.number, "GET", "/", target.hosts[0])
    return TcpConnect(address, port.number)


def _sample_check(expectations: Expectations, client: ClientPod, sample: SampleRequest) -> Check:
    via = f"{sample.method} {sample.path}"
    target = next((target for target in expectations.targets if target.name == sample.target), None)
    port = next((port for port in target.ports if port.protocol == "HTTP"), None) if target else None
    rule = _RULES.get(sample.expected, Rule.OBSERVE)
    base = Check(sample.client, client.namespace, sample.target, via, sample.expected, rule)
    if target is None or port is None:
        return _with(base, unprobed=(Result.SKIP, f"{expectations.source} declares no HTTP port of {sample.target}"))
    if sample.expected in _UNJUDGED:
        return _with(base, unprobed=(Result.SKIP, _UNJUDGED[sample.expected]))
    if target.unusable:
        return _with(base, unprobed=(Result.ERROR, target.unusable))
    return _with(base, probe=HttpRequest(target.hosts[0], port.number, sample.method, sample.path, target.hosts[0]))


def _undeclared_check(expectations: Expectations, client: ClientPod, row: str, undeclared: Undeclared) -> Check:
    verdict, why_open = expectations.undeclared_verdict(row, undeclared.host)
    if verdict is None:
        return Check(row, client.namespace, str(undeclared), UNDECLARED_VIA, "-", Rule.OBSERVE,
                     unprobed=(Result.SKIP, f"{expectations.source} does not say whether {row}'s egress is locked down"))
    rule = Rule.REFUSE if verdict == DENY else Rule.OBSERVE
    expected = verdict if why_open is None else f"{verdict} ({why_open})"
    return Check(row, client.namespace, str(undeclared), UNDECLARED_VIA, expected, rule,
                 probe=TcpConnect(undeclared.host, undeclared.port))


def _with(check: Check, *, probe: Probe | None = None, unprobed: tuple[Result, str] | None = None) -> Check:
    return Check(check.client, check.namespace, check.target, check.via, check.expected, check.rule, probe, unprobed)


def unprobed_rows(expectations: Expectations, clients: Sequence[ClientPod]) -> list[str]:
    """Matrix rows no test client speaks for: a pod runs as one identity of its namespace."""
    failed = {client.namespace for client in clients if client.row is None}
    covered = {client.row for client in clients} | {row for row in expectations.clients if client_identity(row)[0] in failed}
    return [row for row in expectations.clients if row not in covered]


# --- running and judging ------------------------------------------------------------------------------

def judge(rule: Rule, observation: Observation) -> Result:
    if observation.outcome is Outcome.ERROR:
        return Result.ERROR
    if rule is Rule.OBSERVE:
        return Result.INFO
    if rule is Rule.REFUSE:
        # A rejecting server still answered: the connection got through.
        return Result.PASS if observation.outcome is Outcome.BLOCKED else Result.FAIL
    if observation.outcome is Outcome.REJECTING:
        # The path is open but the database is not taking sessions: neither proven nor refuted.
        return Result.ERROR
    return Result.PASS if observation.outcome is Outcome.REACHED else Result.FAIL


def run_check(kubectl: Kubectl, check: Check, timeout: float, clock: Clock) -> CheckResult:
    if check.probe is None:
        result = check.unprobed[0] if check.unprobed else Result.SKIP
        return CheckResult(check, result, None, None)
    started = clock()
    run = kubectl.exec(check.namespace, TEST_CLIENT_NAME, TEST_CLIENT_NAME, check.probe.command(), timeout)
    seconds = clock() - started
    observation = observe(check.probe, check.namespace, run, timeout)
    return CheckResult(check, judge(check.rule, observation), observation, seconds)


def describe(check: Check) -> str:
    return f"{check.client} -> {check.target} ({check.via})"


def run_checks(kubectl: Kubectl, checks: Sequence[Check], *, timeout: float, parallel: int, clock: Clock,
               progress: TextIO) -> list[CheckResult]:
    """Run the probes at most `parallel` at a time; progress in completion order, results in plan order."""
    results: list[CheckResult | None] = [None] * len(checks)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(run_check, kubectl, check, timeout, clock): index for index, check in enumerate(checks)}
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results[futures[future]] = result
            timing = "not run" if result.seconds is None else f"{result.seconds:.2f}s"
            progress.write(f"[{done}/{len(checks)}] {describe(result.check)} ... {result.result.value} ({timing})\n")
            progress.flush()
    return [result for result in results if result is not None]
