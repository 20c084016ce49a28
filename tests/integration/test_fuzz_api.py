"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema (issue 9 §6).

schemathesis generates valid and invalid requests (JSON bodies, multipart uploads with random
bytes, query strings, path parameters) for every operation of a real `voxshift serve`. Every answer
must be below 500 (a 503 is allowed only as the documented overload/failure answer with
Retry-After), every error must be in OpenAI's error shape, and the server's log must hold no
unhandled exception. Seeded, bounded in examples per operation, so a CI run is repeatable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.integration.server import RunningServer, start_server

pytestmark = pytest.mark.slow

EXAMPLES = 30  # per operation


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("fuzz"),
        {
            "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
            # Keeps each accepted synthesis short; the limits themselves are tested elsewhere.
            "VOXSHIFT_MAX_TEXT_CHARS": "300",
            "VOXSHIFT_MAX_UPLOAD_MB": "1",
        },
    )
    yield srv
    srv.stop()
    log = srv.log
    assert "Traceback" not in log, log[-5000:]
    assert "unhandled error" not in log, log[-5000:]


def assert_openai_error(response: Any) -> None:
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


CALLS: Counter[str] = Counter()


def check(case: Any) -> None:
    response = case.call(timeout=60)
    CALLS[case.operation.label] += 1
    status = response.status_code
    where = f"{case.method} {case.formatted_path}: {status} {response.text[:300]}"
    if status == 503:
        # Allowed only as the documented answer to load or a provider outage.
        assert "retry-after" in {k.lower() for k in response.headers}, where
    else:
        assert status < 500, where
    if status >= 400:
        assert_openai_error(response)


def test_no_request_is_a_server_error(fuzz_server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/audio/speech", "POST /v1/audio/transcriptions", "POST /v2/synthesize"} <= labels
    # Valid requests, and requests that break the schema (wrong types, missing fields, junk).
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            strategy = operation.as_strategy(generation_mode=mode)
            run = settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )(given(case=strategy)(check))
            try:
                run()
            except Unsatisfiable:
                # An operation without inputs (GET /healthz) has no way to be wrong.
                assert mode is GenerationMode.NEGATIVE, operation.label
    # Hypothesis stops early on small input spaces; the request-heavy operations must have had many.
    assert CALLS["POST /v1/audio/speech"] >= EXAMPLES and CALLS["POST /v1/audio/transcriptions"] >= EXAMPLES
