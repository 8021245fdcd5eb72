"""Seeds 002 and 004, the HTTP egress examples, as their authors wrote the manifests (tests/analysis/
seeds/*.yaml): their httpbin cells allow only some requests, so they read LIMITED, and asking about
one request settles it the way the seeds' own transcripts show.

Upstream: ../shared/seeds/002_8fd21385000db829.txt (step 3: "RBAC: access denied" for GET /get, the
/anything response for GET /anything; Istio 1.23.2, older than the oldest release the analysis knows,
so it is judged as 1.24) and ../shared/seeds/004_172e6ea1b8b1bd45.txt (istio.io "Controlling mesh
egress": POST denied for the low-privilege curl, allowed for admin); semantics of methods and paths
from pilot/pkg/security/authz/model/generator.go (methodGenerator, pathGenerator).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import HttpRequest, MeshIndex, ObjectRef, Request, access_matrix, evaluate, load_manifests
from analysis.__main__ import main

SEEDS = Path(__file__).resolve().parent / "seeds"
SEED_002 = SEEDS / "002-egress-waypoint-httpbin.yaml"
SEED_004 = SEEDS / "004-controlling-mesh-egress.yaml"


def cells(path: Path, request: str | None = None, **options) -> dict[str, dict[str, str]]:
    asked = HttpRequest.parse(request) if request else None
    return access_matrix(load_manifests(path), request=asked, **options).to_dict()["cells"]


# Seed 002: a policy on the whole waypoint, GET /anything only


def test_seed_002_clients_may_only_get_anything_at_httpbin():
    limited = {"client": {"egress/httpbin.org": "LIMITED"}, "httpbin": {"egress/httpbin.org": "LIMITED"}}
    assert cells(SEED_002, istio_version="1.24") == limited


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [("GET:/anything", "ALLOW"), ("GET:/get", "DENY"), ("POST:/anything", "DENY"), ("GET:/anything?x=1", "ALLOW")],
)
def test_seed_002_requests_match_its_transcript(request_text, expected):
    assert cells(SEED_002, request_text, istio_version="1.24")["client"]["egress/httpbin.org"] == expected


# Seed 004: admin may do anything; everyone else only GET /get


def test_seed_004_admin_row_is_allowed_and_everyone_else_limited():
    assert cells(SEED_004) == {
        "default": {"common-infrastructure/httpbin.org": "LIMITED"},
        "default/sa/admin": {"common-infrastructure/httpbin.org": "ALLOW"},
    }


@pytest.mark.parametrize(
    ("service_account", "method", "path", "expected"),
    [
        ("admin", "POST", "/post", "ALLOW"),
        ("admin", "GET", "/headers", "ALLOW"),
        ("curl", "GET", "/get", "ALLOW"),
        ("curl", "POST", "/post", "DENY"),
        ("curl", "GET", "/headers", "DENY"),
    ],
)
def test_seed_004_admin_may_do_anything_and_curl_only_get_slash_get(service_account, method, path, expected):
    request = Request(
        "default", ObjectRef("common-infrastructure", "httpbin.org"), 80,
        service_account=service_account, method=method, path=path,
    )
    verdict = evaluate(MeshIndex(load_manifests(SEED_004)), request)
    assert verdict.decision.value == expected, verdict.reason


# The command line


def test_cli_judges_each_request_for_every_cell(capsys):
    main([str(SEED_004), "--request", "GET:/get", "--request", "POST:/post"])
    out = capsys.readouterr().out
    get_table = out[out.index("Request GET /get:"):out.index("Request POST /post:")]
    post_table = out[out.index("Request POST /post:"):]
    assert get_table.splitlines()[2].split()[:2] == ["default", "ALLOW"]
    assert post_table.splitlines()[2].split()[:2] == ["default", "DENY"]
    assert post_table.splitlines()[3].split()[:2] == ["default/sa/admin", "ALLOW"]


def test_cli_json_carries_the_release_and_each_requests_matrix(capsys):
    main([str(SEED_002), "--format", "json", "--istio-version", "1.24", "--request", "GET:/anything"])
    document = json.loads(capsys.readouterr().out)
    assert document["istio_version"] == "1.24"
    assert document["matrix"]["cells"]["client"]["egress/httpbin.org"] == "LIMITED"
    [judged] = document["requests"]
    assert judged["request"] == "GET /anything"
    assert judged["matrix"]["cells"]["client"]["egress/httpbin.org"] == "ALLOW"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--istio-version", "1.23"], "the analysis knows Istio 1.24 to 1.31 (got 1.23)"),
        (["--request", "GET /get"], "a request is METHOD:/PATH"),
        (["--request", "GET:/get", "--format", "mermaid"], "a Mermaid diagram holds one matrix"),
    ],
)
def test_cli_rejects_what_it_cannot_use_and_says_why(capsys, argument, message):
    with pytest.raises(SystemExit) as stopped:
        main([str(SEED_004), *argument])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
