"""The OpenAPI document of the whole app, walked: every /admin/v1 operation is behind the bearer
scheme, declares 401 (and 403 when it changes something) with the error body, has a response schema
for its success and a schema for its request body, and every $ref in the document resolves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from voxshift.api.app import create_app
from voxshift.config import Settings

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), preload_engines=False, workers=1)
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def admin_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        if path.startswith("/admin/v1/")
        for method, op in item.items()
    ]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(schema: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = schema
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def json_schema(response_or_body: dict[str, Any]) -> dict[str, Any]:
    content = response_or_body.get("content", {})
    assert "application/json" in content, response_or_body
    found: dict[str, Any] = content["application/json"].get("schema", {})
    return found


def test_every_admin_operation_declares_its_auth_errors_and_schemas(schema: dict[str, Any]) -> None:
    operations = admin_operations(schema)
    paths = {path for _, path, _ in operations}
    assert {
        "/admin/v1/whoami",
        "/admin/v1/flags",
        "/admin/v1/flags/kill",
        "/admin/v1/flags/allow",
        "/admin/v1/flags/deny",
        "/admin/v1/flags/explain",
        "/admin/v1/flags/history",
        "/admin/v1/rollout",
        "/admin/v1/rollout/history",
        *(f"/admin/v1/rollout/{c}" for c in ("start", "pause", "resume", "promote", "rollback", "abort")),
        "/admin/v1/metrics",
        "/admin/v1/regression",
        "/admin/v1/feedback/stats",
        "/admin/v1/report",
        "/admin/v1/readiness/{stage}",
        "/admin/v1/agents",
        "/admin/v1/agents/{agent_id}",
        "/admin/v1/sunset",
        "/admin/v1/sunset/plan",
        "/admin/v1/sunset/report",
        "/admin/v1/sunset/validate",
        "/admin/v1/sunset/run/{phase}",
        "/admin/v1/sunset/resolve",
        "/admin/v1/backups",
        "/admin/v1/backups/{backup_id}/verify",
        "/admin/v1/audit",
        "/admin/v1/dashboard",
    } == paths
    schemes = schema["components"]["securitySchemes"]
    assert schemes["AdminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin token from `voxshift tokens create NAME --role viewer|operator`.",
    }
    for method, path, op in operations:
        where = f"{method} {path}"
        assert op.get("security") == [{"AdminToken": []}], where
        responses = op["responses"]
        wanted = {"401", "503"} | ({"403", "409"} if method != "GET" else set())
        assert wanted <= set(responses), where
        for status in wanted | {"400", "4XX"}:
            assert json_schema(responses[status]) == {"$ref": ERROR_REF}, (where, status)
        assert "422" not in responses, where  # validation errors are answered 400
        success = json_schema(responses.get("200") or responses["201"])
        assert success and (success.get("$ref") or success.get("type") in ("object", "array")), where
        if "requestBody" in op:
            body = json_schema(op["requestBody"])
            assert body.get("$ref"), where
            assert resolve(schema, body["$ref"])["properties"], where
        assert op.get("summary") and op.get("description"), where


def test_every_ref_in_the_document_resolves(schema: dict[str, Any]) -> None:
    found = set(refs(schema))
    assert ERROR_REF in found and len(found) > 20
    for ref in found:
        resolve(schema, ref)


def test_the_error_body_is_openai_s(schema: dict[str, Any]) -> None:
    detail = resolve(schema, resolve(schema, ERROR_REF)["properties"]["error"]["$ref"])
    assert set(detail["properties"]) == {"message", "type", "param", "code"}
    assert set(detail["required"]) == {"message", "type"}


# The voice and public routes: (method, path) -> the error statuses each must declare.
VOICE_ERRORS = {
    ("POST", "/v1/audio/transcriptions"): {"400", "401", "413", "415", "502", "503", "504"},
    ("POST", "/v1/audio/translations"): {"400", "401", "413", "415", "502", "503", "504"},
    ("POST", "/v1/audio/speech"): {"400", "401", "502", "503", "504"},
    ("GET", "/v1/models"): {"401"},
    ("GET", "/v1/models/{model_id}"): {"401", "404"},
    ("POST", "/v2/transcribe"): {"400", "401", "413", "415", "502", "503", "504"},
    ("POST", "/v2/synthesize"): {"400", "401", "502", "503", "504"},
    ("GET", "/v2/cache/stats"): {"400", "401", "503"},
    ("GET", "/v2/migration/dashboard"): {"400", "401", "503"},
    ("GET", "/v2/flags"): {"400", "401", "503"},
    ("GET", "/v2/flags/explain"): {"400", "401", "503"},
    ("GET", "/v2/migration/regression"): {"400", "401", "503"},
    ("POST", "/v1/feedback"): {"400", "401", "404", "409", "503"},
}


def test_every_other_operation_declares_its_errors_with_the_error_body(schema: dict[str, Any]) -> None:
    operations = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        if not path.startswith("/admin/v1/")
        for method, op in item.items()
    }
    assert set(VOICE_ERRORS) | {("GET", "/healthz"), ("GET", "/readyz")} == set(operations)
    for key, statuses in VOICE_ERRORS.items():
        responses = operations[key]["responses"]
        assert "422" not in responses, key  # validation errors are answered 400, in the error body
        assert statuses | {"4XX"} <= set(responses), (key, sorted(responses))
        for status in statuses | {"4XX"}:
            assert json_schema(responses[status]) == {"$ref": ERROR_REF}, (key, status)
        if "401" in statuses:
            assert "VOXSHIFT_VOICE_API_KEY" in responses["401"]["description"], key
    audio = operations[("POST", "/v1/audio/speech")]["responses"]["200"]["content"]
    assert {"audio/mpeg", "audio/wav"} <= set(audio), sorted(audio)
