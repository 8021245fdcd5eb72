"""kubectl, always against one context: reading objects as JSON, running commands in a pod, and the
preflight that proves a cluster answers before anything is checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .process import CompletedRun, Executor, failure

# Bounds every non-exec kubectl call: the API server's own timeout, plus slack for kubectl itself.
REQUEST_TIMEOUT_SECONDS = 10
_PROCESS_SLACK_SECONDS = 5
PART_OF_SELECTOR = "app.kubernetes.io/part-of=ambient-egress"


class CannotVerify(Exception):
    """Verification cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Read:
    """An object or list read from the cluster, or why it could not be read."""

    document: dict[str, Any] | None
    problem: str | None = None
    not_found: bool = False


@dataclass(frozen=True)
class Kubectl:
    """Builds every kubectl command line the tools run, all against one context."""

    executor: Executor
    context: str | None = None
    binary: str = "kubectl"

    def run(self, *args: str, timeout: float = REQUEST_TIMEOUT_SECONDS + _PROCESS_SLACK_SECONDS) -> CompletedRun:
        context = ["--context", self.context] if self.context else []
        return self.executor.run([self.binary, *context, *args], timeout)

    def get(self, resource: str, *names: str, namespace: str | None = None, selector: str | None = None) -> Read:
        """`kubectl get -o json`; a list when no name or several are given."""
        args = ["get", resource, *names]
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        run = self.run(*args, "-o", "json", f"--request-timeout={REQUEST_TIMEOUT_SECONDS}s")
        where = f"{resource} {'/'.join(filter(None, [namespace, *names]))}".rstrip()
        if run.timed_out:
            return Read(None, f"reading {where} timed out")
        if run.exit_code != 0:
            if "NotFound" in run.stderr:
                return Read(None, f"{where} not found", not_found=True)
            if "doesn't have a resource type" in run.stderr:
                return Read(None, f"the cluster has no {resource} type: is its CRD installed?")
            return Read(None, f"cannot read {where}: {failure(run)}")
        try:
            document = json.loads(run.stdout)
        except ValueError:
            return Read(None, f"kubectl printed no JSON for {where}")
        if not isinstance(document, dict):
            return Read(None, f"kubectl printed no object for {where}")
        return Read(document)

    def exec(self, namespace: str, pod: str, container: str, command: list[str], timeout: float) -> CompletedRun:
        return self.run("exec", "-n", namespace, pod, "-c", container, "--", *command, timeout=timeout)


def preflight(kubectl: Kubectl) -> str:
    """The kubectl context verification will use, once kubectl, a kubeconfig and the cluster all answer."""
    if kubectl.context is None:
        current = kubectl.run("config", "current-context")
        _require_kubectl(current)
        if current.exit_code != 0 or not current.stdout.strip():
            raise CannotVerify(
                f"no kubeconfig/current context: {failure(current)}. Point KUBECONFIG at your cluster's "
                "kubeconfig, run `kubectl config use-context <name>`, or pass --context."
            )
        context = current.stdout.strip()
    else:
        known = kubectl.run("config", "get-contexts", "-o", "name")
        _require_kubectl(known)
        names = known.stdout.split()
        if known.exit_code != 0 or kubectl.context not in names:
            listed = ", ".join(names) or "none; is KUBECONFIG set?"
            raise CannotVerify(f"no kubeconfig context {kubectl.context!r} (known contexts: {listed})")
        context = kubectl.context
    ready = kubectl.run("get", "--raw", "/readyz", f"--request-timeout={REQUEST_TIMEOUT_SECONDS}s")
    if ready.timed_out:
        raise CannotVerify(f"cluster of context {context!r} is not reachable: no answer within {REQUEST_TIMEOUT_SECONDS}s")
    if ready.exit_code != 0:
        raise CannotVerify(f"cluster of context {context!r} is not reachable: {failure(ready)}")
    return context


def _require_kubectl(run: CompletedRun) -> None:
    if run.not_found:
        raise CannotVerify("kubectl is not installed or not on PATH: install kubectl to verify a live cluster")
