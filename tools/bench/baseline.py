"""The benchmark's baseline: the SDK's floor for registering and reading as many resources, with no logic.

It replays a program run's records as plain resources: the same count, the same type tokens and
the same input dicts (the rendered manifests, already resolved), but no parents, no dependencies,
no Outputs, no typed pulumi-kubernetes classes and no component outputs. A component becomes a
bare `pulumi.ComponentResource` without inputs, a read a bare `pulumi.CustomResource` read by id
(the same `ReadResource` call the program's `Resource.get` makes), and every other record a
`pulumi.CustomResource` whose inputs are the manifest the program produced.

What the program costs beyond this is its own overhead: Output chains, typed resource classes,
the component tree and its outputs, dependency tracking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    inputs: dict[str, Any] | None
    """The manifest; None for a component and for a read."""
    read_id: str | None = None
    """The id of the object a read fetches (`<namespace>/<name>` or `<name>`); None: not a read."""


def read_id(state: dict[str, Any]) -> str:
    """The id a Kubernetes object is read by, from the metadata the read returned."""
    metadata = state["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else str(metadata["name"])


def write_registrations(path: Path, registrations: Iterable[Registration]) -> None:
    with path.open("w") as out:
        for registration in registrations:
            out.write(json.dumps([registration.type, registration.name, registration.inputs, registration.read_id],
                                 separators=(",", ":")))
            out.write("\n")


def read_registrations(path: Path) -> Iterator[Registration]:
    with path.open() as lines:
        for line in lines:
            yield Registration(*json.loads(line))


def baseline_program(registrations: list[Registration]) -> Callable[[], None]:
    """A Pulumi program function that registers and reads `registrations` as plain resources."""

    def program() -> None:
        for index, registration in enumerate(registrations):
            # The index keeps names unique even where the program reused a name under other parents.
            unique = f"{registration.name}-{index}"
            if registration.read_id is not None:
                pulumi.CustomResource(registration.type, unique, {}, pulumi.ResourceOptions(id=registration.read_id))
            elif registration.inputs is None:
                pulumi.ComponentResource(registration.type, unique)
            else:
                pulumi.CustomResource(registration.type, unique, registration.inputs)

    return program
