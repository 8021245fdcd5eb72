"""What the README shows is what the project does: its example outputs are today's outputs, its
example program runs, and its tables list exactly the fields, keys and outputs there are."""

from __future__ import annotations

import csv
import json
import re

import pytest
import yaml

from stack import StackConfig
from tools.bench.formula import reads, registrations, resources
from tools.bench.topology import Topology
from tools.mock_engine import RecordingMocks, resolved, run_on_mocks
from tools.plan.__main__ import main as plan_main

from .support import ROOT, dev_values, run

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def table_first_column(text: str, header: str) -> list[str]:
    """The first cell of each row of the table whose header row starts with `header`."""
    lines = text[text.index(header):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_the_dev_plan_shown_is_what_make_plan_prints(tmp_path, capsys):
    shown = blocks(section("On a fresh machine"), "text")[0]
    out = tmp_path / "plan"
    assert plan_main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out.replace(str(out / "manifests"), "build/plan/dev/manifests")
    assert printed == shown


def test_the_http_example_prints_the_sample_requests_shown(tmp_path, capsys):
    http = section("HTTP and TLS services")
    stack = tmp_path / "Pulumi.http.yaml"
    stack.write_text(blocks(http, "yaml")[0])
    assert plan_main(["--config", str(stack), "--out", str(tmp_path / "plan")]) == 0
    printed = capsys.readouterr().out
    assert printed[printed.index("Access for"):] == blocks(http, "text")[0]


def test_the_component_example_runs_and_composes_the_components_it_names():
    program = blocks(section("Using the components from your own program"), "python")[0]
    run = run_on_mocks(lambda: exec(program, {"__name__": "__main__"}), RecordingMocks())
    components = {resource.type.split(":")[-1] for resource in run.resources if resource.type.startswith("ambient-egress:")}
    assert components == {"MeshPrerequisites", "EgressGateway", "ExternalDatabase", "ExternalService", "NamespaceGrant"}
    assert resolved(run.outputs["ordersHost"]) == "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
    policies = {manifest["metadata"]["name"] for manifest in run.manifests() if manifest["kind"] == "AuthorizationPolicy"}
    assert {"allow-orders-from-shop", "allow-payments-api-from-shop"} <= policies


def test_the_plan_json_fields_documented_are_the_fields_it_writes(tmp_path, capsys):
    documented = {field.strip("`") for cell in table_first_column(section("Reviewing a change"), "| field |")
                  for field in cell.split(", ")}
    plan_main(["--out", str(tmp_path / "plan"), "--format", "json"])
    assert documented == set(json.loads(capsys.readouterr().out))


def test_the_config_reference_lists_every_top_level_key_of_the_model():
    rows = table_first_column(section("Stack config reference"), "| key | type | default | meaning |")
    documented = {key.strip("`").split(".")[0] for cell in rows for key in cell.split(" / ")}
    assert documented == set(StackConfig.model_json_schema(by_alias=True)["properties"])


def test_the_stack_outputs_listed_are_the_ones_the_program_exports():
    paragraph = section("Deploy to a cluster")
    paragraph = paragraph[paragraph.index("Stack outputs:"):].split("\n\n")[0]
    listed = set(re.findall(r"`([a-zA-Z]+)`", paragraph)) - {"make"}
    ambient = set(run().outputs)
    sidecar = set(run(dev_values(dataplane="sidecar"), {"postgres-1": {"ip": "203.0.113.10"},
                                                         "postgres-2": {"ip": "203.0.113.11"}}).outputs)
    assert listed == ambient | sidecar


def test_the_stack_files_the_readme_names_exist_and_parse():
    for name in sorted(set(re.findall(r"Pulumi\.[a-z]+\.yaml", README))):
        assert "config" in yaml.safe_load((ROOT / name).read_text()), name


def test_the_scale_table_is_the_published_benchmark():
    """Each row of the README's table is the row of docs/bench.csv for that size, rounded as shown."""
    published = {row["size"]: row for row in csv.DictReader((ROOT / "docs" / "bench.csv").open())}
    columns = ("resources", "program_wall_s", "program_gc_s", "baseline_wall_s", "ratio_wall", "plan_wall_s",
               "plan_peak_rss_mb", "analysis_wall_s", "analysis_peak_rss_mb")
    text = section("Scale")
    lines = text[text.index("| size | resources |"):].splitlines()[2:]
    rows = [line.split("|")[1:-1] for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    assert [row[0].strip() for row in rows] == list(published)
    for row in rows:
        shown = [float(cell.strip().replace(",", "")) for cell in row[1:]]
        measured = [float(published[row[0].strip()][column]) for column in columns]
        for value, exact in zip(shown, measured, strict=True):
            assert value == pytest.approx(exact, rel=0.005, abs=0.005), (row[0], value, exact)


def test_the_resource_count_shown_is_the_formulas():
    text = " ".join(section("Scale").split())
    assert "9 + 4·D + 3·N + G registrations and 7 + N reads" in text
    for databases, namespaces, grants in ((10, 10, 100), (1000, 1000, 10000), (7, 3, 12)):
        shape = Topology(databases, namespaces, grants).shape()
        assert registrations(shape) == 9 + 4 * databases + 3 * namespaces + grants
        assert reads(shape) == 7 + namespaces
    assert f"{resources(Topology(1000, 1000, 10000).shape()):,} in all at the largest size" in text
