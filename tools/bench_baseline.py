"""The benchmark's baseline: the SDK's floor for registering as many resources, with no logic.

It replays a program run's registrations as plain resources: the same count, the same type
tokens and the same input dicts (the rendered manifests, already resolved), but no parents, no
dependencies, no Outputs, no typed pulumi-kubernetes classes and no component outputs. Component
registrations become bare `pulumi.ComponentResource`s without inputs, every other one a
`pulumi.CustomResource` whose inputs are the manifest the program produced.

What the program costs beyond this is its own overhead: Output chains, typed resource classes,
the component tree and its outputs, dependency tracking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pulumi

Registration = tuple[str, str, "dict[str, Any] | None"]
"""(type token, resource name, inputs or None for a component)."""


def write_registrations(path: Path, registrations: Iterable[Registration]) -> None:
    with path.open("w") as out:
        for registration in registrations:
            out.write(json.dumps(registration, separators=(",", ":")))
            out.write("\n")


def read_registrations(path: Path) -> Iterator[Registration]:
    with path.open() as lines:
        for line in lines:
            type_token, name, inputs = json.loads(line)
            yield type_token, name, inputs


def baseline_program(registrations: list[Registration]):
    """A Pulumi program function that registers `registrations` as plain resources."""

    def program() -> None:
        for index, (type_token, name, inputs) in enumerate(registrations):
            # The index keeps names unique even where the program reused a name under other parents.
            unique = f"{name}-{index}"
            if inputs is None:
                pulumi.ComponentResource(type_token, unique)
            else:
                pulumi.CustomResource(type_token, unique, inputs)

    return program
