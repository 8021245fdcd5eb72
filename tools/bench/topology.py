"""Generated stacks: D databases, N namespaces and G grants, reproducible from a seed.

The databases are existing ones with an address (issue 13's target), unless some are asked for as
PostgreSQL stand-ins. The namespaces are granted as a real platform grants them, to teams'
existing namespaces that the stack does not own (the default): each is read and gets its ambient
label. Everything else is the config's defaults (ambient, admission, egress lockdown).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .formula import StackShape

DEFAULT_SEED = 20240605
# RFC 2544 benchmarking addresses for the stand-ins' LoadBalancers; TEST-NET ranges for the existing
# databases: nothing here is ever dialled.
_LOAD_BALANCER_NET = "198.18"
_EXTERNAL_NETS = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True)
class Topology:
    """D databases (the first `stand_ins` of them PostgreSQL stand-ins, the rest existing databases
    with an address), N namespaces and G (namespace, database) grants."""

    databases: int
    namespaces: int
    grants: int
    stand_ins: int = 0
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if min(self.databases, self.namespaces, self.grants) < 1:
            raise ValueError("D, N and G must each be at least 1")
        if self.grants > self.databases * self.namespaces:
            raise ValueError(f"G={self.grants} exceeds D*N={self.databases * self.namespaces}: "
                             "a grant is a distinct pair")
        if not 0 <= self.stand_ins <= self.databases:
            raise ValueError("stand-ins must be within 0..D")

    @property
    def label(self) -> str:
        extra = f" S={self.stand_ins}" if self.stand_ins else ""
        return f"D={self.databases} N={self.namespaces} G={self.grants}{extra}"

    @property
    def argument(self) -> str:
        """The size as `--sizes` takes it."""
        return f"{self.databases},{self.namespaces},{self.grants}" + (f",{self.stand_ins}" if self.stand_ins else "")

    @property
    def existing(self) -> int:
        return self.databases - self.stand_ins

    @property
    def granted_namespaces(self) -> int:
        """Namespaces holding at least one grant: all N when G >= N."""
        return min(self.namespaces, self.grants)

    def shape(self) -> StackShape:
        """What the resource formula needs: default flags, namespaces not owned, no service accounts."""
        return StackShape(stand_ins=self.stand_ins, existing=self.existing,
                          unowned_namespaces=self.granted_namespaces, grants=self.grants)

    def database_names(self) -> list[str]:
        return [f"db-{index:04d}" for index in range(self.databases)]

    def namespace_names(self) -> list[str]:
        return [f"team-{index:04d}" for index in range(self.namespaces)]

    def grant_lists(self) -> dict[str, list[str]]:
        """Each namespace's databases: every namespace gets at least one grant when G >= N, the
        rest are spread at random, and databases are handed out round a shuffled cycle so each
        gets about G/D namespaces."""
        rng = random.Random(self.seed)
        namespaces = self.namespace_names()[: self.granted_namespaces]
        counts = [1] * len(namespaces)
        for _ in range(self.grants - len(namespaces)):
            while True:
                slot = rng.randrange(len(namespaces))
                if counts[slot] < self.databases:
                    counts[slot] += 1
                    break
        cycle = self.database_names()
        rng.shuffle(cycle)
        cursor = 0
        lists: dict[str, list[str]] = {}
        for namespace, count in zip(namespaces, counts, strict=True):
            lists[namespace] = [cycle[(cursor + offset) % len(cycle)] for offset in range(count)]
            cursor = (cursor + count) % len(cycle)
        return lists

    def existing_address(self, index: int) -> str:
        # IPv4 documentation addresses while they last (762), then DNS names.
        if index < 254 * len(_EXTERNAL_NETS):
            return f"{_EXTERNAL_NETS[index // 254]}.{index % 254 + 1}"
        return f"db-{index:04d}.example.com"

    def config(self) -> dict[str, Any]:
        """Stack config values, keyed without the project prefix, as a stack file holds them."""
        databases: list[dict[str, Any]] = []
        for index, name in enumerate(self.database_names()):
            entry: dict[str, Any] = {"name": name}
            if index >= self.stand_ins:
                entry["address"] = self.existing_address(index - self.stand_ins)
            databases.append(entry)
        grants = [{"namespace": namespace, "databases": names} for namespace, names in self.grant_lists().items()]
        return {"databases": databases, "grants": grants}

    def load_balancers(self) -> dict[str, dict[str, str]]:
        """The ingress a cloud would report for each stand-in's LoadBalancer Service."""
        return {
            name: {"ip": f"{_LOAD_BALANCER_NET}.{index // 250}.{index % 250 + 1}"}
            for index, name in enumerate(self.database_names()) if index < self.stand_ins
        }

    def write_stack_file(self, path: Path, project: str) -> Path:
        """The topology as a `Pulumi.<stack>.yaml` of `project`, for `make plan --config`."""
        config = {f"{project}:{key}": value for key, value in self.config().items()}
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return path

    def plan_arguments(self) -> list[str]:
        """`--lb NAME=ADDRESS` for every stand-in: the same addresses as the mock runs get, where
        `make plan` would otherwise hand out its own placeholders."""
        return [f"--lb={name}={ingress['ip']}" for name, ingress in self.load_balancers().items()]


def parse_size(text: str) -> Topology:
    """`D,N,G` or `D,N,G,S` (or with `x`), for argparse."""
    try:
        parts = [int(part) for part in text.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"a size is D,N,G or D,N,G,S (got {text!r})")
    try:
        return Topology(*parts)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
