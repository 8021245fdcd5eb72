"""`make e2e` (tools/e2e), driven by the fake executor of the verify tests: every command the run
would start is answered from canned runs, so each test states what docker, kind, kubectl and pulumi
said, and sees what the run did about it. Nothing here creates a cluster or pretends to have."""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tools import e2e
from tools.e2e.leftovers import LABELLED_RESOURCES
from tools.e2e.load_balancers import METALLB_MANIFEST
from tools.e2e.processes import Tools
from tools.verify.process import CompletedRun

from .test_verify import (
    HOSTS,
    LB,
    NAMESPACES,
    Answer,
    FakeExecutor,
    cluster,
    database_target,
    json_run,
    pg_isready,
)

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = "kind-ambient-egress"
OK = CompletedRun(0)
KIND_IPAM = '[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"},{"Subnet":"fc00:f853:ccd:e793::/64"}]'
NOTHING = CompletedRun(0, "")
WEBHOOK_NOT_READY = CompletedRun(1, stderr='Error from server (InternalError): error when creating "metallb-pool.yaml": Internal '
                                           'error occurred: failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io"\n')


def kind_outputs() -> dict[str, Any]:
    """`pulumi stack output --json` of the kind stack, with the outputs verify asks for."""
    return {
        "egressNamespace": "istio-egress", "waypoint": "waypoint", "istioVersion": "1.30.3",
        "databases": {name: {"host": HOSTS[name], "port": 5432} for name in LB}, "services": {}, "credentials": "[secret]",
        "accessMatrix": {"rds-demo-1": {"postgres-1": "ALLOW"}, "rds-demo-2": {"postgres-2": "ALLOW"}},
        "targets": [database_target(name) for name in LB],
        "egressLockdown": {namespace: {"enabled": True, "allowCidrs": []} for namespace in NAMESPACES},
        "sampleRequests": [],
    }


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """The repository's own kind stack file and pinned requirements, in a directory the run may write."""
    shutil.copy(ROOT / "Pulumi.kind.yaml", tmp_path)
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    return tmp_path


def pool_file(project_dir: Path) -> str:
    return str(project_dir / "build" / "e2e" / "metallb-pool.yaml")


def machine(project_dir: Path, **answers: Answer) -> dict[tuple[str, ...], Answer]:
    """A laptop with every tool, no kind cluster yet, and a cluster that deploys, verifies and tears down
    cleanly; `answers` replaces a step's answer by name (create, up, destroy, namespaces, ...)."""
    steps: dict[str, tuple[tuple[str, ...], Answer]] = {
        "docker": (("docker", "info"), CompletedRun(0, "28.3.0\n")),
        "kind": (("kind", "version"), CompletedRun(0, "kind v0.32.0 go1.25.3 linux/amd64\n")),
        "kubectl": (("kubectl", "version", "--client"), CompletedRun(0, "Client Version: v1.36.1\n")),
        "pulumi": (("pulumi", "version"), CompletedRun(0, "v3.272.0\n")),
        "clusters": (("kind", "get", "clusters"), CompletedRun(0, "", "No kind clusters found.\n")),
        "create": (("kind", "create", "cluster"), OK),
        "label": (("label", "nodes"), OK),
        "metallb": (("apply", "-f", METALLB_MANIFEST), OK),
        "metallb_ready": (("wait", "-n", "metallb-system"), OK),
        "network": (("docker", "network", "inspect", "kind"), CompletedRun(0, KIND_IPAM + "\n")),
        "pool": (("apply", "-f", pool_file(project_dir)), OK),
        "select": (("pulumi", "stack", "select"), CompletedRun(255, stderr="error: no stack named 'kind' found\n")),
        "init": (("pulumi", "stack", "init"), OK),
        "up": (("pulumi", "up"), OK),
        "outputs": (("pulumi", "stack", "output"), json_run(kind_outputs())),
        "destroy": (("pulumi", "destroy"), OK),
        "namespaces": (("get", "namespaces"), NOTHING),
        "secrets": (("get", "secrets"), NOTHING),
        "crds": (("get", "customresourcedefinitions"), NOTHING),
        "rm": (("pulumi", "stack", "rm"), OK),
        "delete": (("kind", "delete", "cluster"), OK),
    }
    responses: dict[tuple[str, ...], Answer] = {key: answers.get(name, answer) for name, (key, answer) in steps.items()}
    for resource in LABELLED_RESOURCES:
        responses[("get", resource, "--all-namespaces")] = answers.get(resource, NOTHING)
    verify_cluster = cluster(answers.get("probes"))
    del verify_cluster[("config", "current-context")]
    responses |= verify_cluster
    responses[("config", "get-contexts")] = CompletedRun(0, f"{CONTEXT}\n")
    return responses


class Laptop:
    """One e2e run on the fake machine: what it printed, what it ran, with which environment."""

    def __init__(self, project_dir: Path, responses: Mapping[tuple[str, ...], Answer], *args: str,
                 environ: Mapping[str, str] | None = None):
        self.executor = FakeExecutor(responses)
        self.environments: list[Mapping[str, str]] = []
        self.pauses: list[float] = []
        self.out = io.StringIO()

        def tools(env: Mapping[str, str]) -> Tools:
            self.environments.append(env)
            return Tools(steps=self.executor, quiet=self.executor)

        self.code = e2e.main(list(args), tools=tools, environ=environ or {}, clock=self.executor.clock,
                             sleep=self.pauses.append, project_dir=project_dir, out=self.out)

    @property
    def printed(self) -> str:
        return self.out.getvalue()

    def commands(self) -> list[str]:
        """Each command as its first words, up to the first option."""
        shown = []
        for argv, _ in self.executor.calls:
            words = [word for word in argv if word not in ("--context", CONTEXT)]
            shown.append(" ".join(words[:next((i for i, word in enumerate(words) if word.startswith("-")), len(words))]))
        return shown

    def ran(self, *words: str) -> bool:
        return any(command.startswith(" ".join(words)) for command in self.commands())

    def steps(self) -> dict[str, str]:
        """The summary table: step name → ok, FAILED or not run."""
        table = self.printed.split("\nSTEP ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
        return {line[:self._result_column()].strip(): line[self._result_column():].split("  ")[0].strip() for line in table}

    def _result_column(self) -> int:
        header = "STEP " + self.printed.split("\nSTEP ", 1)[1].splitlines()[0]
        return header.index("RESULT")


# --- the whole run ---------------------------------------------------------------------------------

def test_a_run_goes_from_an_empty_cluster_to_a_verified_table_and_back(project_dir, capsys):
    laptop = Laptop(project_dir, machine(project_dir))

    assert laptop.code == 0
    assert laptop.steps() == {
        "create cluster": "ok", "let LoadBalancers use the node": "ok", "install MetalLB": "ok", "wait for MetalLB": "ok",
        "MetalLB address pool 172.18.255.200-172.18.255.250": "ok", "create stack": "ok", "pulumi up": "ok", "verify": "ok",
        "pulumi destroy": "ok", "check nothing is left": "ok", "delete cluster": "ok",
    }
    commands = laptop.commands()
    order = ["docker info", "kind version", "kubectl version", "pulumi version", "kind get clusters", "kind create cluster",
             "kubectl label nodes", "kubectl apply", "kubectl wait", "docker network inspect kind", "kubectl apply",
             "pulumi stack init", "pulumi up", "pulumi stack output", "pulumi destroy", "kubectl get namespaces",
             "kind delete cluster"]
    positions = [next(i for i, command in enumerate(commands) if command.startswith(step) and i >= start)
                 for start, step in _walk(order, commands)]
    assert positions == sorted(positions)
    assert "17 passed, 0 failed" in capsys.readouterr().out  # make verify's own table, all of it proven
    assert laptop.printed.endswith("e2e: passed\n")


def _walk(order: list[str], commands: list[str]) -> list[tuple[int, str]]:
    """Each step with the position after the previous step's command, so repeats find their own."""
    walked, start = [], 0
    for step in order:
        walked.append((start, step))
        start = next(i for i, command in enumerate(commands) if command.startswith(step) and i >= start) + 1
    return walked


def test_each_step_announces_what_it_runs(project_dir):
    laptop = Laptop(project_dir, machine(project_dir))

    assert "\n==> create cluster: kind create cluster --name ambient-egress --wait 5m\n" in laptop.printed
    assert f"\n==> pulumi up: pulumi up --yes --stack kind --non-interactive --cwd {project_dir}\n" in laptop.printed
    assert ("\n==> verify: make verify STACK=kind VERIFY_ARGS='--context kind-ambient-egress'\n") in laptop.printed


def test_metallb_hands_out_the_top_of_the_kind_network_and_the_pool_is_applied_until_its_webhook_takes_it(project_dir):
    attempts = iter([WEBHOOK_NOT_READY, WEBHOOK_NOT_READY, OK])

    laptop = Laptop(project_dir, machine(project_dir, pool=lambda argv: next(attempts)))

    assert laptop.code == 0
    assert laptop.pauses == [10.0, 10.0]
    assert "(attempt 3 of 6)" in laptop.printed
    assert "    - 172.18.255.200-172.18.255.250\n" in Path(pool_file(project_dir)).read_text()


# --- stopping before the first step ------------------------------------------------------------------

def test_missing_tools_stop_the_run_before_its_first_step_naming_each_and_how_to_get_it(project_dir):
    absent = CompletedRun(127, stderr="command not found")

    laptop = Laptop(project_dir, machine(project_dir, kind=absent, pulumi=absent))

    assert laptop.code == 2
    assert "e2e: not started: missing prerequisites:\n" in laptop.printed
    assert "  - kind: not installed; install kind v0.32.0: go install sigs.k8s.io/kind@v0.32.0" in laptop.printed
    assert ("  - pulumi: not installed; install the Pulumi CLI v3.272.0, the version requirements.txt pins: curl -fsSL "
            "https://get.pulumi.com | sh -s -- --version 3.272.0") in laptop.printed
    assert not laptop.ran("kind create")


@pytest.mark.parametrize("answers, message", [
    ({"docker": CompletedRun(1, stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")},
     "docker: the engine does not answer (Cannot connect to the Docker daemon at unix:///var/run/docker.sock.)"),
    ({"kind": CompletedRun(0, "kind v0.23.0 go1.22.4 linux/amd64\n")},
     "kind: version 0.23.0 is too old: from v0.24.0 kind enforces NetworkPolicy, which the egress lockdown needs"),
    ({"clusters": CompletedRun(0, "ambient-egress\nother\n")},
     "a kind cluster named ambient-egress exists already: the run starts from an empty one. Delete it (kind delete cluster "
     "--name ambient-egress) and run again"),
], ids=["docker-down", "kind-too-old", "cluster-exists"])
def test_a_machine_that_cannot_start_a_run_stops_it_with_exit_2_and_the_fix(project_dir, answers, message):
    laptop = Laptop(project_dir, machine(project_dir, **answers))

    assert laptop.code == 2
    assert message in laptop.printed
    assert not laptop.ran("kind create")


@pytest.mark.parametrize("change, message", [
    (("kubernetes:context: kind-ambient-egress", "kubernetes:context: prod"),
     "Pulumi.kind.yaml: kubernetes:context must be kind-<cluster name>, the context kind creates (got prod)"),
    (("ambient-egress:testClients: true", "ambient-egress:testClients: false"),
     "Pulumi.kind.yaml: set ambient-egress:testClients: true; make verify probes from those pods"),
    (("port: 5432", "port: 70000"), "ambient-egress:databases[0].port"),
], ids=["not-a-kind-context", "no-test-clients", "invalid-config"])
def test_a_stack_file_the_run_cannot_use_stops_it_naming_the_problem(project_dir, change, message):
    stack_file = project_dir / "Pulumi.kind.yaml"
    stack_file.write_text(stack_file.read_text().replace(*change, 1))

    laptop = Laptop(project_dir, machine(project_dir))

    assert laptop.code == 2
    assert message in laptop.printed
    assert laptop.executor.calls == []


def test_requirements_without_a_pulumi_pin_stop_the_run_before_its_first_step(project_dir):
    (project_dir / "requirements.txt").write_text("pulumi>=3\n")

    laptop = Laptop(project_dir, machine(project_dir))

    assert laptop.code == 2
    assert "requirements.txt pins no pulumi version (pulumi==X.Y.Z): the CLI is matched to it" in laptop.printed
    assert not laptop.ran("kind create")


def test_an_unknown_option_is_refused_naming_it(capsys):
    with pytest.raises(SystemExit) as stopped:
        e2e.cli.parse_args(["--verbose"])

    assert stopped.value.code == 2
    assert "unrecognized arguments: --verbose" in capsys.readouterr().err


# --- failures and teardown ---------------------------------------------------------------------------

def test_a_failing_pulumi_up_skips_verify_but_still_tears_everything_down(project_dir):
    failed = CompletedRun(255, "Updating (kind):\nerror: update failed\n")

    laptop = Laptop(project_dir, machine(project_dir, up=failed))

    assert laptop.code == 1
    assert "e2e: step 'pulumi up' failed: exit 255: error: update failed" in laptop.printed
    steps = laptop.steps()
    assert (steps["pulumi up"], steps["verify"]) == ("FAILED", "not run")
    assert (steps["pulumi destroy"], steps["check nothing is left"], steps["delete cluster"]) == ("ok", "ok", "ok")
    assert not laptop.ran("pulumi stack output") and laptop.executor.execs() == []
    assert laptop.printed.endswith("e2e: FAILED at pulumi up\n")


def test_a_denied_cell_that_connects_fails_verify_and_the_run_after_teardown(project_dir):
    connects = {("rds-demo-1", HOSTS["postgres-2"]): pg_isready(HOSTS["postgres-2"], 0)}

    laptop = Laptop(project_dir, machine(project_dir, probes=connects))

    assert laptop.code == 1
    steps = laptop.steps()
    assert steps["verify"] == "FAILED" and steps["pulumi destroy"] == "ok" and steps["delete cluster"] == "ok"
    assert "e2e: step 'verify' failed: a check failed: the cluster does not do what the stack says" in laptop.printed


def test_anything_the_stack_created_still_there_after_destroy_fails_the_run(project_dir):
    leftovers = {
        "namespaces": CompletedRun(0, "namespace/db\n"),
        "serviceentries.networking.istio.io": CompletedRun(0, "serviceentry.networking.istio.io/postgres-1\n"),
        "validatingadmissionpolicies.admissionregistration.k8s.io": CompletedRun(
            0, "validatingadmissionpolicy.admissionregistration.k8s.io/ambient-egress.istio-egress.serviceentry-namespaces\n"),
        "secrets": CompletedRun(0, "secret/sh.helm.release.v1.istiod.v1\nsecret/unrelated\n"),
        "crds": CompletedRun(0, "customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io\n"
                                "customresourcedefinition.apiextensions.k8s.io/ipaddresspools.metallb.io\n"),
    }

    laptop = Laptop(project_dir, machine(project_dir, **leftovers))

    assert laptop.code == 1
    assert laptop.steps()["check nothing is left"] == "FAILED"
    assert ("e2e: step 'check nothing is left' failed: left: namespace/db; left: serviceentry.networking.istio.io/postgres-1; "
            "left: validatingadmissionpolicy.admissionregistration.k8s.io/ambient-egress.istio-egress.serviceentry-namespaces; "
            "left: Helm release istiod (secret/sh.helm.release.v1.istiod.v1); "
            "left: customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io") in laptop.printed
    assert ["kubectl", "--context", CONTEXT, "get", "namespaces", "istio-egress", "db", "rds-demo-1", "rds-demo-2",
            "--ignore-not-found", "-o", "name", "--request-timeout=10s"] in [argv for argv, _ in laptop.executor.calls]


def test_leftovers_that_could_not_be_looked_for_are_not_called_clean(project_dir):
    refused = CompletedRun(1, stderr="The connection to the server 127.0.0.1:41235 was refused\n")

    laptop = Laptop(project_dir, machine(project_dir, secrets=refused))

    assert laptop.code == 1
    assert ("not checked: Helm releases in istio-system: The connection to the server 127.0.0.1:41235 was refused"
            in laptop.printed)


def test_a_resource_type_gone_with_istio_holds_no_leftovers(project_dir):
    gone = CompletedRun(1, stderr='error: the server doesn\'t have a resource type "serviceentries"\n')

    laptop = Laptop(project_dir, machine(project_dir, **{"serviceentries.networking.istio.io": gone}))

    assert laptop.code == 0


def test_a_failed_destroy_still_checks_leftovers_and_deletes_the_cluster(project_dir):
    laptop = Laptop(project_dir, machine(project_dir, destroy=CompletedRun(255, "error: destroy failed\n")))

    assert laptop.code == 1
    steps = laptop.steps()
    assert (steps["pulumi destroy"], steps["check nothing is left"], steps["delete cluster"]) == ("FAILED", "ok", "ok")


def test_a_cluster_that_fails_to_come_up_is_deleted_and_nothing_else_runs(project_dir):
    laptop = Laptop(project_dir, machine(project_dir, create=CompletedRun(1, "ERROR: failed to create cluster: timed out\n")))

    assert laptop.code == 1
    assert laptop.steps() == {"create cluster": "FAILED", "verify": "not run", "delete cluster": "ok"}
    commands = laptop.commands()
    assert commands[commands.index("kind create cluster"):] == ["kind create cluster", "kind delete cluster"]


def test_keep_cluster_leaves_the_cluster_after_tearing_the_stack_down(project_dir):
    laptop = Laptop(project_dir, machine(project_dir), "--keep-cluster")

    assert laptop.code == 0
    assert laptop.ran("pulumi destroy") and not laptop.ran("kind delete")


def test_a_node_image_is_passed_to_kind(project_dir):
    laptop = Laptop(project_dir, machine(project_dir), "--node-image", "kindest/node:v1.35.0")

    create = next(argv for argv, _ in laptop.executor.calls if argv[:3] == ["kind", "create", "cluster"])
    assert create[-2:] == ["--image", "kindest/node:v1.35.0"]


# --- state ----------------------------------------------------------------------------------------

def test_state_goes_to_a_fresh_local_backend_deleted_afterwards(project_dir):
    laptop = Laptop(project_dir, machine(project_dir))

    env = laptop.environments[0]
    state = Path(urlparse(env["PULUMI_BACKEND_URL"]).path)
    assert env["PULUMI_BACKEND_URL"].startswith("file://") and env["PULUMI_CONFIG_PASSPHRASE"]
    assert not state.exists()
    assert not laptop.ran("pulumi stack select") and not laptop.ran("pulumi stack rm")


def test_pulumi_backend_url_is_honoured_and_a_stack_the_run_created_there_is_removed(project_dir):
    laptop = Laptop(project_dir, machine(project_dir), environ={"PULUMI_BACKEND_URL": "s3://team-state"})

    assert laptop.environments[0]["PULUMI_BACKEND_URL"] == "s3://team-state"
    assert "PULUMI_CONFIG_PASSPHRASE" not in laptop.environments[0]
    assert laptop.ran("pulumi stack select") and laptop.ran("pulumi stack init") and laptop.ran("pulumi stack rm")


def test_a_stack_that_already_exists_in_pulumi_backend_url_is_used_and_kept(project_dir):
    laptop = Laptop(project_dir, machine(project_dir, select=OK), environ={"PULUMI_BACKEND_URL": "s3://team-state"})

    assert laptop.code == 0
    assert not laptop.ran("pulumi stack init") and not laptop.ran("pulumi stack rm")


def test_the_stack_file_is_left_as_it_was_though_stack_init_writes_its_salt_into_it(project_dir):
    stack_file = project_dir / "Pulumi.kind.yaml"
    before = stack_file.read_bytes()

    def init(argv: list[str]) -> CompletedRun:
        stack_file.write_bytes(before + b"encryptionsalt: v1:abc\n")
        return OK

    Laptop(project_dir, machine(project_dir, init=init))

    assert stack_file.read_bytes() == before


# --- the kind stack itself --------------------------------------------------------------------------

def test_the_kind_stack_is_seed_000_on_a_cluster_it_brings_up_itself():
    from stack import load_stack_file, read_stack_file
    from stack.access import access_matrix

    config = load_stack_file(ROOT / "Pulumi.kind.yaml")

    assert read_stack_file(ROOT / "Pulumi.kind.yaml").kubernetes_context == CONTEXT
    assert access_matrix(config) == {"rds-demo-1": {"postgres-1": "ALLOW", "postgres-2": "DENY"},
                                     "rds-demo-2": {"postgres-1": "DENY", "postgres-2": "ALLOW"}}
    assert (config.istio.install, config.istio.version, config.gateway_api.install) == (True, "1.30.3", True)
    assert config.test_clients and all(grant.create_namespace for grant in config.grants)
    assert all(database.is_stand_in for database in config.databases)
    # The stand-ins' fence stays on: MetalLB's addresses let it see the waypoint (tools/e2e/load_balancers.py).
    assert config.bypass_protection.database_ingress_policy and config.lockdown(config.grants[0]).enabled

