"""Running commands: the one place `make verify` and `make e2e` touch a process, so tests swap it
for a fake that answers from canned runs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# The shell's convention for "command not found", so an executor can report it without a new field.
COMMAND_NOT_FOUND = 127


@dataclass(frozen=True)
class CompletedRun:
    """What a command did. `exit_code` is None when it was stopped at its timeout."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @property
    def not_found(self) -> bool:
        return self.exit_code == COMMAND_NOT_FOUND


class Executor(Protocol):
    def run(self, argv: list[str], timeout: float) -> CompletedRun: ...


@dataclass(frozen=True)
class SubprocessExecutor:
    """Runs commands on this machine, with `env` as their whole environment when given."""

    env: Mapping[str, str] | None = None

    def run(self, argv: list[str], timeout: float) -> CompletedRun:
        try:
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                       env=dict(self.env) if self.env is not None else None)
        except subprocess.TimeoutExpired as expired:
            return CompletedRun(None, decoded(expired.stdout), decoded(expired.stderr), timed_out=True)
        except FileNotFoundError:
            return CompletedRun(COMMAND_NOT_FOUND, stderr=f"{argv[0]}: command not found")
        return CompletedRun(completed.returncode, completed.stdout, completed.stderr)


def decoded(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the run asked for text.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def failure(run: CompletedRun) -> str:
    """Why a command failed, in one line: the last line of its stderr, else of its stdout."""
    # kubectl exec appends this to a failed remote command's stderr; it would hide the real reason.
    stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("command terminated with exit code"))
    return last_line(stderr) or last_line(run.stdout) or f"exit code {run.exit_code}"
