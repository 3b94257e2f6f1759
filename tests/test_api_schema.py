"""The OpenAPI schema describes every endpoint; the docs are served here; schemathesis finds
no server error and no response that disagrees with the schema."""

import re
import subprocess
import sys

from django.urls import URLPattern, get_resolver

from conversations.apikeys import create_key
from tests.servers import ARTIFACTS

OPENAPI_JSON = {"Accept": "application/vnd.oai.openapi+json"}
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/"}


def api_routes() -> dict[str, set[str]]:
    """Every /api/ path (in OpenAPI spelling) and the HTTP methods its view answers."""
    routes = {}
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        path = "/api/" + re.sub(r"<\w+:(\w+)>", r"{\1}", str(pattern.pattern))
        view = getattr(pattern.callback, "view_class", None)
        methods = {m for m in ("get", "post", "patch", "put", "delete") if hasattr(view, m)}
        routes[path] = methods or {"get"}  # the stream view is a plain GET function
    return routes


def test_schema_describes_every_api_endpoint_and_method(server, client_for):
    response = client_for(None).http.get("/api/schema/", headers=OPENAPI_JSON)
    assert response.status_code == 200
    schema = response.json()
    routes = {path: methods for path, methods in api_routes().items() if path not in NOT_IN_SCHEMA}
    assert set(schema["paths"]) == set(routes)
    for path, methods in routes.items():
        assert set(schema["paths"][path]) == methods, path
        for method in methods:
            operation = schema["paths"][path][method]
            assert operation.get("summary"), (path, method)
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)
    assert {"apiKey", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_describes_the_event_stream_response(server, client_for):
    schema = client_for(None).http.get("/api/schema/", headers=OPENAPI_JSON).json()
    stream = schema["paths"]["/api/messages/{message_id}/stream/"]["get"]
    event = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["properties"]["event"]["enum"] == ["reasoning", "delta", "done", "error", "ping"]
    assert "Last-Event-ID" in {p["name"] for p in stream["parameters"]}
    assert "application/json" in stream["responses"]["404"]["content"]


def test_docs_page_is_swagger_ui_served_from_this_site(server, client_for):
    client = client_for(None)
    response = client.http.get("/api/docs/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.text
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/' in attributes for attributes in scripts)  # none inline
    assert not re.search(r'(src|href)="(https?:)?//', html)  # everything from this site
    assert "<style" not in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.http.get(asset).status_code == 200, asset
    start = client.http.get("/api/docs/?script=")
    assert start.headers["content-type"].startswith("application/javascript")
    assert "/api/schema/" in start.text


def test_schemathesis_finds_no_server_error_or_schema_mismatch(server, alice):
    _key, secret = create_key(alice, "schemathesis")
    checks = ",".join([
        "not_a_server_error", "status_code_conformance", "content_type_conformance",
        "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
    ])  # fmt: skip
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "run", f"{server.url}/api/schema/",
        "--header", f"Authorization: Bearer {secret}",
        "--checks", checks,
        "--exclude-operation-id", "keys_destroy",  # it would revoke the key it runs with
        "--max-examples", "25", "--seed", "20261122", "--workers", "1",
        "--request-timeout", "30",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ARTIFACTS, capture_output=True, text=True, timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert re.search(r"Test cases:\s+\d+ generated, \d+ passed", output), output[-3000:]
