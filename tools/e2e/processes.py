"""How `make e2e` runs things: long steps with their output streamed as they run (and kept, for the
reason a step failed), checks quietly."""

from __future__ import annotations

import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from tools.verify.process import COMMAND_NOT_FOUND, CompletedRun, Executor, SubprocessExecutor

KEPT_LINES = 200


@dataclass(frozen=True)
class StreamingExecutor:
    """Runs a command with its output (stdout and stderr together) copied to `out` line by line."""

    out: IO[str]
    env: Mapping[str, str] | None = None

    def run(self, argv: list[str], timeout: float) -> CompletedRun:
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                       env=dict(self.env) if self.env is not None else None)
        except FileNotFoundError:
            return CompletedRun(COMMAND_NOT_FOUND, stderr=f"{argv[0]}: command not found")
        kept: deque[str] = deque(maxlen=KEPT_LINES)

        def copy() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.out.write(line)
                self.out.flush()
                kept.append(line)

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        try:
            exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            reader.join()
            return CompletedRun(None, "".join(kept), timed_out=True)
        reader.join()
        return CompletedRun(exit_code, "".join(kept))


@dataclass(frozen=True)
class Tools:
    steps: Executor
    """For the steps: what they print is shown as it comes."""
    quiet: Executor
    """For checks and `make verify`: only their verdicts are shown."""


def local_tools(env: Mapping[str, str], out: IO[str]) -> Tools:
    return Tools(StreamingExecutor(out, env), SubprocessExecutor(env))
