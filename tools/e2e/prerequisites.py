"""What `make e2e` needs on this machine, checked before its first step, each with how to get it.

The versions are the ones the walkthrough (docs/kind.md) and the CI workflow
(.github/workflows/e2e.yml) install; a test keeps the three in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.verify.process import Executor, failure

KIND_VERSION = "v0.32.0"
# kindnet enforces NetworkPolicy from kind v0.24.0 (kubernetes-sigs/kind#3612); without it the
# egress lockdown the stack deploys would be written but never enforced.
KIND_MINIMUM = (0, 24, 0)
KUBECTL_VERSION = "v1.36.1"
CHECK_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Missing:
    tool: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.tool}: {self.problem}; {self.fix}"


def _version(text: str) -> tuple[int, ...] | None:
    found = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in found.groups()) if found else None


def check_docker(executor: Executor) -> Missing | None:
    run = executor.run(["docker", "info", "--format", "{{.ServerVersion}}"], CHECK_TIMEOUT_SECONDS)
    if run.not_found:
        return Missing("docker", "not installed", "install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/)")
    if run.exit_code != 0 or run.timed_out:
        return Missing("docker", f"the engine does not answer ({'no answer' if run.timed_out else failure(run)})",
                       "start Docker Desktop, colima or the docker service, and check `docker info` works without sudo")
    return None


def check_kind(executor: Executor) -> Missing | None:
    fix = f"install kind {KIND_VERSION}: go install sigs.k8s.io/kind@{KIND_VERSION}, or https://kind.sigs.k8s.io/docs/user/quick-start/"
    run = executor.run(["kind", "version"], CHECK_TIMEOUT_SECONDS)
    if run.not_found:
        return Missing("kind", "not installed", fix)
    version = _version(run.stdout)
    if version is None or version < KIND_MINIMUM:
        shown = ".".join(map(str, version)) if version else f"unknown ({failure(run)})"
        minimum = ".".join(map(str, KIND_MINIMUM))
        return Missing("kind", f"version {shown} is too old: from v{minimum} kind enforces NetworkPolicy, which the egress "
                               "lockdown needs", fix)
    return None


def check_kubectl(executor: Executor) -> Missing | None:
    run = executor.run(["kubectl", "version", "--client"], CHECK_TIMEOUT_SECONDS)
    if run.not_found or run.exit_code != 0:
        return Missing("kubectl", "not installed" if run.not_found else failure(run),
                       f"install kubectl {KUBECTL_VERSION} (https://kubernetes.io/docs/tasks/tools/)")
    return None


def check_pulumi(executor: Executor, pinned: str) -> Missing | None:
    run = executor.run(["pulumi", "version"], CHECK_TIMEOUT_SECONDS)
    if run.not_found or run.exit_code != 0:
        return Missing("pulumi", "not installed" if run.not_found else failure(run),
                       f"install the Pulumi CLI v{pinned}, the version requirements.txt pins: curl -fsSL https://get.pulumi.com "
                       f"| sh -s -- --version {pinned}")
    return None


def missing_tools(executor: Executor, *, pulumi_version: str) -> list[Missing]:
    """Everything missing, so one run names all of it."""
    checks = [check_docker(executor), check_kind(executor), check_kubectl(executor), check_pulumi(executor, pulumi_version)]
    return [missing for missing in checks if missing is not None]
