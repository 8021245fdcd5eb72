"""The JSON Schema of a `Pulumi.<stack>.yaml` file, generated from the config model.

    python -m stack.schema            # rewrites docs/stack-config.schema.json
    python -m stack.schema --check    # exit 1 when the committed schema is stale

Editors that speak the YAML language server validate and complete a stack file against it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .model import PROJECT, StackConfig

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "stack-config.schema.json"


def stack_file_schema(project: str = PROJECT) -> dict[str, Any]:
    model = StackConfig.model_json_schema(by_alias=True)
    keys = {f"{project}:{key}": schema for key, schema in model["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ambient-egress.invalid/stack-config.schema.json",
        "title": f"Pulumi stack file of {project}",
        "description": "Generated from stack/model.py by `python -m stack.schema`; do not edit.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": keys,
                # Keys of other namespaces (`kubernetes:context`) are their owners' to judge; a key in
                # this program's namespace must be one it reads.
                "propertyNames": {"anyOf": [{"enum": sorted(keys)}, {"not": {"pattern": f"^{project}:"}}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "additionalProperties": False,
        "$defs": model.get("$defs", {}),
    }


def rendered() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/stack-config.schema.json is stale")
    args = parser.parse_args(argv)
    if args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != rendered():
            print(f"{SCHEMA_PATH} is stale: run python -m stack.schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(rendered())
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
