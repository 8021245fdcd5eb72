from __future__ import annotations

import json

import yaml

from analysis.__main__ import main


def write(tmp_path, manifests) -> str:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(manifests))
    return str(tmp_path)


def test_clean_manifests_exit_zero_and_print_the_table(k8s, tmp_path, capsys):
    assert main([write(tmp_path, k8s.seed())]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No findings.")
    assert "rds-demo-1" in out and "ALLOW" in out


def test_error_finding_exits_one(k8s, tmp_path, capsys):
    assert main([write(tmp_path, [*k8s.seed(), k8s.service_entry("postgres-3")])]) == 1
    assert "[EGW0203]" in capsys.readouterr().out


def test_json_format_prints_findings_and_matrix_as_one_document(k8s, tmp_path, capsys):
    main([write(tmp_path, [*k8s.seed(), k8s.service_entry("postgres-3")]), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["findings"][0]["code"] == "EGW0203"
    assert document["matrix"]["cells"]["rds-demo-1"]["istio-egress/postgres-3"] == "OPEN"


def test_mermaid_format_keeps_stdout_a_diagram(k8s, tmp_path, capsys):
    main([write(tmp_path, [*k8s.seed(), k8s.service_entry("postgres-3")]), "--format", "mermaid"])
    captured = capsys.readouterr()
    assert captured.out.startswith("flowchart LR")
    assert "[EGW0203]" in captured.err and "EGW" not in captured.out


def test_open_route_around_the_waypoint_exits_one_and_shows_in_json(k8s, tmp_path, capsys):
    assert main([write(tmp_path, k8s.seed(protected=False)), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert {finding["code"] for finding in document["findings"]} == {"EGW0401", "EGW0402"}
    assert document["matrix"]["cells"]["rds-demo-2"]["istio-egress/postgres-1"] == "BYPASS"
    assert document["matrix"]["bypasses"]["rds-demo-2"]["istio-egress/postgres-1"] == [
        "raw IP 10.0.0.1",
        "in-cluster db/postgres-1",
    ]


def test_json_carries_any_other_external_destination_for_every_client(k8s, tmp_path, capsys):
    lockdown = k8s.network_policy("egress-lockdown", "rds-demo-1", egress=[{"to": [{"namespaceSelector": {}}]}])
    main([write(tmp_path, [*k8s.seed(), lockdown]), "--format", "json"])
    matrix = json.loads(capsys.readouterr().out)["matrix"]
    assert matrix["other_destinations"] == {"rds-demo-1": "DENY", "rds-demo-2": "OPEN"}


def test_reasons_can_be_left_out_of_json_and_text(k8s, tmp_path, capsys):
    directory = write(tmp_path, k8s.seed())
    main([directory, "--format", "json", "--no-reasons"])
    matrix = json.loads(capsys.readouterr().out)["matrix"]
    assert "reasons" not in matrix and "other_destination_reasons" not in matrix
    assert matrix["cells"]["rds-demo-1"]["istio-egress/postgres-1"] == "ALLOW"
    main([directory])
    assert " -> " in capsys.readouterr().out
    main([directory, "--no-reasons"])
    assert " -> " not in capsys.readouterr().out
