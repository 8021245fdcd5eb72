"""`make e2e`: the command line, and the steps from an empty kind cluster to a verified table and back.

    python -m tools.e2e [--stack kind] [--keep-cluster] [--node-image IMAGE]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from analysis import align_columns
from stack import ConfigError, StackConfig, read_stack_file
from tools.verify import cli as verify_cli
from tools.verify.kubectl import Kubectl
from tools.verify.process import CompletedRun, Executor, failure
from tools.verify.report import EXIT_FAILED as VERIFY_FAILED
from tools.verify.report import EXIT_NOT_VERIFIED as VERIFY_NOT_VERIFIED

from .leftovers import describe_leftover_search, find_leftovers
from .load_balancers import KIND_NETWORK, METALLB_MANIFEST, METALLB_NAMESPACE, NoAddressPool, address_pool, pool_manifests
from .prerequisites import missing_tools
from .processes import Tools, local_tools

ROOT = Path(__file__).resolve().parents[2]
EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_NOT_STARTED = 2
CLUSTER_READY_WAIT = "5m"
TIMEOUTS = {"create": 15 * 60, "kubectl": 120, "wait": 6 * 60, "stack": 120, "up": 45 * 60, "destroy": 30 * 60,
            "delete": 5 * 60}
METALLB_READY_WAIT = "5m"
# MetalLB's webhook refuses its own objects until its controller serves it, a little after the pods
# report Ready: the address pool is applied again until it is taken.
POOL_ATTEMPTS = 6
POOL_PAUSE_SECONDS = 10.0
WORK_DIR = Path("build") / "e2e"
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class CannotStart(Exception):
    """The run stops before its first step; the message says why and what to do."""


@dataclass
class Step:
    name: str
    ok: bool | None
    """None: not run."""
    seconds: float | None
    detail: str = ""


@dataclass
class Steps:
    """Runs and records the steps, each announced with what it runs."""

    out: IO[str]
    clock: Clock
    sleep: Sleep
    done: list[Step] = field(default_factory=list)

    def run(self, name: str, executor: Executor, argv: list[str], timeout: float, *, attempts: int = 1,
            pause: float = 0.0) -> bool:
        started = self.clock()
        for attempt in range(1, attempts + 1):
            again = f" (attempt {attempt} of {attempts})" if attempt > 1 else ""
            self.out.write(f"\n==> {name}{again}: {' '.join(argv)}\n")
            self.out.flush()
            run = executor.run(argv, timeout)
            if run.exit_code == 0 or attempt == attempts:
                break
            self.out.write(f"e2e: {_why(run, timeout)}; trying again in {pause:g}s\n")
            self.sleep(pause)
        return self.record(name, run.exit_code == 0, self.clock() - started, "" if run.exit_code == 0 else _why(run, timeout))

    def record(self, name: str, ok: bool | None, seconds: float | None, detail: str = "") -> bool:
        self.done.append(Step(name, ok, seconds, detail))
        if ok is False:
            self.out.write(f"e2e: step '{name}' failed: {detail}\n")
        return bool(ok)

    @property
    def failed(self) -> list[Step]:
        return [step for step in self.done if step.ok is False]

    def table(self) -> str:
        rows = [("STEP", "RESULT", "SECONDS", "DETAIL")] + [
            (step.name, {True: "ok", False: "FAILED", None: "not run"}[step.ok],
             "-" if step.seconds is None else f"{step.seconds:.0f}", step.detail)
            for step in self.done
        ]
        return "\n".join(align_columns(rows))


def _why(run: CompletedRun, timeout: float) -> str:
    if run.timed_out:
        return f"no end within {timeout / 60:g} minutes"
    return f"exit {run.exit_code}: {failure(run)}"


@dataclass(frozen=True)
class KindStack:
    """The stack and cluster a run works on, from the stack file."""

    stack: str
    context: str
    cluster: str
    config: StackConfig
    stack_file: Path


def read_target(stack: str, project_dir: Path) -> KindStack:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise CannotStart(f"no stack file {path.name} in {project_dir}: the e2e run deploys it")
    try:
        stack_file = read_stack_file(path)
        config = stack_file.stack_config()
    except ConfigError as error:
        raise CannotStart(str(error)) from None
    context = stack_file.kubernetes_context or ""
    if not context.startswith("kind-") or context == "kind-":
        raise CannotStart(f"{path.name}: kubernetes:context must be kind-<cluster name>, the context kind creates "
                          f"(got {context or 'none'})")
    if not config.test_clients:
        raise CannotStart(f"{path.name}: set ambient-egress:testClients: true; make verify probes from those pods")
    return KindStack(stack, context, context.removeprefix("kind-"), config, path)


def pinned_pulumi_version(project_dir: Path) -> str:
    """The Pulumi SDK version requirements.txt pins: the CLI to match."""
    try:
        requirements = (project_dir / "requirements.txt").read_text()
    except OSError as error:
        raise CannotStart(f"requirements.txt cannot be read ({error.strerror or error}): run from the repository") from None
    found = re.search(r"^pulumi==([0-9.]+)\s*$", requirements, re.MULTILINE)
    if found is None:
        raise CannotStart("requirements.txt pins no pulumi version (pulumi==X.Y.Z): the CLI is matched to it")
    return found.group(1)


@dataclass(frozen=True)
class Backend:
    """Where the run keeps Pulumi state: the user's PULUMI_BACKEND_URL, or a fresh local directory."""

    url: str
    temporary: Path | None

    @classmethod
    def choose(cls, environ: Mapping[str, str]) -> Backend:
        if environ.get("PULUMI_BACKEND_URL"):
            return cls(environ["PULUMI_BACKEND_URL"], None)
        directory = Path(tempfile.mkdtemp(prefix="ambient-egress-e2e-state-"))
        return cls(directory.as_uri(), directory)

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        env = {**environ, "PULUMI_BACKEND_URL": self.url, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        if self.temporary is not None:
            # Encrypts only the throwaway state of this run, deleted with it.
            env.setdefault("PULUMI_CONFIG_PASSPHRASE", secrets.token_hex(16))
        return env


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.e2e",
        description="From an empty kind cluster to a verified table and back: create the cluster, install MetalLB, "
                    "pulumi up, make verify, pulumi destroy, check nothing is left, delete the cluster.",
        epilog="Exit codes: 0 every step passed; 1 a step failed (the summary names it); 2 stopped before the first step "
               "(a missing tool, a bad stack file, an existing cluster).",
    )
    parser.add_argument("--stack", default="kind", help="the stack to deploy; its kubernetes:context names the kind "
                                                        "cluster (default: kind)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the kind cluster running, with the stack torn "
                                                                    "down and MetalLB still installed")
    parser.add_argument("--node-image", help="kind node image, e.g. kindest/node:v1.35.0 (default: kind's own)")
    return parser.parse_args(argv)


@dataclass
class Run:
    """One e2e run: what has been created so far decides what teardown does."""

    target: KindStack
    tools: Tools
    steps: Steps
    project_dir: Path
    user_backend: bool
    args: argparse.Namespace
    cluster_created: bool = False
    stack_init_tried: bool = False
    stack_created: bool = False
    up_tried: bool = False

    def kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "--context", self.target.context, *args]

    def pulumi(self, *args: str) -> list[str]:
        return ["pulumi", *args, "--stack", self.target.stack, "--non-interactive", "--cwd", str(self.project_dir)]

    def deploy(self) -> bool:
        """Cluster, LoadBalancers, stack, pulumi up; False at the first that fails."""
        create = ["kind", "create", "cluster", "--name", self.target.cluster, "--wait", CLUSTER_READY_WAIT]
        if self.args.node_image:
            create += ["--image", self.args.node_image]
        self.cluster_created = True  # a failed create may leave a node container behind
        if not self.steps.run("create cluster", self.tools.steps, create, TIMEOUTS["create"]):
            return False
        # kind's only node is its control plane, which MetalLB announces nothing from while it carries this label.
        label = self.kubectl("label", "nodes", "--all", "node.kubernetes.io/exclude-from-external-load-balancers-")
        if not self.steps.run("let LoadBalancers use the node", self.tools.steps, label, TIMEOUTS["kubectl"]):
            return False
        if not self.install_load_balancers() or not self.create_stack():
            return False
        self.up_tried = True
        return self.steps.run("pulumi up", self.tools.steps, self.pulumi("up", "--yes"), TIMEOUTS["up"])

    def install_load_balancers(self) -> bool:
        """MetalLB, handing out addresses from the top of the kind Docker network."""
        if not self.steps.run("install MetalLB", self.tools.steps, self.kubectl("apply", "-f", METALLB_MANIFEST),
                              TIMEOUTS["kubectl"]):
            return False
        ready = self.kubectl("wait", "-n", METALLB_NAMESPACE, "--for=condition=Ready", "pod", "-l", "app=metallb",
                             f"--timeout={METALLB_READY_WAIT}")
        if not self.steps.run("wait for MetalLB", self.tools.steps, ready, TIMEOUTS["wait"]):
            return False
        inspect = self.tools.quiet.run(["docker", "network", "inspect", KIND_NETWORK, "--format", "{{json .IPAM.Config}}"],
                                       TIMEOUTS["kubectl"])
        if inspect.exit_code != 0:
            return self.steps.record("MetalLB address pool", False, None,
                                     f"docker network inspect {KIND_NETWORK}: {_why(inspect, TIMEOUTS['kubectl'])}")
        try:
            first, last = address_pool(inspect.stdout)
        except NoAddressPool as error:
            return self.steps.record("MetalLB address pool", False, None, str(error))
        pool = self.project_dir / WORK_DIR / "metallb-pool.yaml"
        pool.parent.mkdir(parents=True, exist_ok=True)
        pool.write_text(pool_manifests(first, last))
        return self.steps.run(f"MetalLB address pool {first}-{last}", self.tools.steps, self.kubectl("apply", "-f", str(pool)),
                              TIMEOUTS["kubectl"], attempts=POOL_ATTEMPTS, pause=POOL_PAUSE_SECONDS)

    def create_stack(self) -> bool:
        if self.user_backend:
            selected = self.tools.quiet.run(self.pulumi("stack", "select"), TIMEOUTS["stack"])
            if selected.exit_code == 0:
                return self.steps.record("create stack", True, None, "exists already; kept afterwards")
            if "no stack named" not in selected.stderr + selected.stdout:
                return self.steps.record("create stack", False, None, _why(selected, TIMEOUTS["stack"]))
        self.stack_init_tried = True
        self.stack_created = self.steps.run("create stack", self.tools.steps, self.pulumi("stack", "init"), TIMEOUTS["stack"])
        return self.stack_created

    def verify(self) -> None:
        command = f"make verify STACK={self.target.stack} VERIFY_ARGS='--context {self.target.context}'"
        self.steps.out.write(f"\n==> verify: {command}\n")
        started = self.steps.clock()
        code = verify_cli.main(["--stack", self.target.stack, "--context", self.target.context], executor=self.tools.quiet,
                               clock=self.steps.clock, project_dir=self.project_dir)
        detail = {VERIFY_FAILED: "a check failed: the cluster does not do what the stack says",
                  VERIFY_NOT_VERIFIED: "not everything could be verified (see its report above)"}.get(code, "")
        self.steps.record("verify", code == 0, self.steps.clock() - started, detail)

    def tear_down(self) -> None:
        # A failed pulumi up may have created part of the stack: destroy once it was tried.
        if self.up_tried:
            destroyed = self.steps.run("pulumi destroy", self.tools.steps, self.pulumi("destroy", "--yes"), TIMEOUTS["destroy"])
            self.steps.out.write(f"\n==> check nothing is left: {describe_leftover_search(self.target.config)}\n")
            started = self.steps.clock()
            leftovers = find_leftovers(Kubectl(self.tools.quiet, self.target.context), self.target.config)
            detail = "; ".join([*(f"left: {found}" for found in leftovers.found),
                                *(f"not checked: {unchecked}" for unchecked in leftovers.unchecked)])
            self.steps.record("check nothing is left", leftovers.clean, self.steps.clock() - started, detail)
            if self.user_backend and self.stack_created and destroyed:
                self.steps.run("remove stack", self.tools.steps, self.pulumi("stack", "rm", "--yes"), TIMEOUTS["stack"])
        if self.cluster_created and not self.args.keep_cluster:
            self.steps.run("delete cluster", self.tools.steps, ["kind", "delete", "cluster", "--name", self.target.cluster],
                           TIMEOUTS["delete"])


def start(args: argparse.Namespace, tools: Tools, project_dir: Path) -> KindStack:
    """Everything checked before the first step; CannotStart names all that is missing."""
    target = read_target(args.stack, project_dir)
    missing = missing_tools(tools.quiet, pulumi_version=pinned_pulumi_version(project_dir))
    if missing:
        raise CannotStart("missing prerequisites:\n" + "\n".join(f"  - {entry}" for entry in missing))
    clusters = tools.quiet.run(["kind", "get", "clusters"], 60)
    if target.cluster in clusters.stdout.split():
        raise CannotStart(f"a kind cluster named {target.cluster} exists already: the run starts from an empty one. Delete it "
                          f"(kind delete cluster --name {target.cluster}) and run again")
    return target


def main(
    argv: Sequence[str] | None = None,
    *,
    tools: Callable[[Mapping[str, str]], Tools] | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    project_dir: Path = ROOT,
    out: IO[str] | None = None,
) -> int:
    args = parse_args(argv)
    out = out or sys.stdout
    environ = dict(os.environ if environ is None else environ)
    backend = Backend.choose(environ)
    env = backend.environment(environ)
    chosen = tools(env) if tools is not None else local_tools(env, out)
    stack_file = project_dir / f"Pulumi.{args.stack}.yaml"
    original_stack_file = stack_file.read_bytes() if stack_file.exists() else None
    run: Run | None = None
    try:
        target = start(args, chosen, project_dir)
        out.write(f"e2e: stack {target.stack!r} on a new kind cluster {target.cluster!r}; Pulumi state in {backend.url}\n")
        run = Run(target, chosen, Steps(out, clock, sleep), project_dir, user_backend=backend.temporary is None, args=args)
        if run.deploy():
            run.verify()
        else:
            run.steps.record("verify", None, None, "not run: an earlier step failed")
        run.tear_down()
    except CannotStart as error:
        out.write(f"e2e: not started: {error}\n")
        return EXIT_NOT_STARTED
    except KeyboardInterrupt:
        cluster = run.target.cluster if run is not None else "<cluster>"
        out.write(f"\ne2e: interrupted; nothing was torn down. `kind delete cluster --name {cluster}` removes all of it\n")
        return EXIT_FAILED
    finally:
        # `pulumi stack init` writes the stack's encryption salt into its stack file; a stack this run
        # made and removed leaves the file as it was.
        if run is not None and run.stack_init_tried and original_stack_file is not None:
            stack_file.write_bytes(original_stack_file)
        if backend.temporary is not None:
            shutil.rmtree(backend.temporary, ignore_errors=True)
    assert run is not None  # every way without a run returned above
    out.write(f"\n{run.steps.table()}\n\n")
    failed = run.steps.failed
    out.write(f"e2e: FAILED at {', '.join(step.name for step in failed)}\n" if failed else "e2e: passed\n")
    return EXIT_FAILED if failed else EXIT_PASSED
