"""User feedback per request (issue 11 section 4), on the real app with real engines, a real Redis and
the real SQLite settings database: every voice answer names its request, a rating of it is filed
under the system that answered (v2 for one user, the reference legacy for another), bad ratings are
400s, unknown ids 404s, a second rating a 409; the ratings reach the rollout's window; a Redis outage
costs the memory of a request, never the request; `voxshift feedback add|stats` work on the same
stores with exit code 2 for bad input."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.redis_server import RedisServer
from tests.integration.cli_helpers import run as cli
from voxshift.api.app import create_app
from voxshift.config import Settings
from voxshift.services.wiring.runtime import VoiceRuntime
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import FeedbackRepository
from voxshift.stores.state import open_state_store

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

V2_USER = "user-on-v2"
LEGACY_USER = "user-on-legacy"
AGENT = "agent_feedback_demo"
REQUEST_ID = re.compile(r"req_[A-Za-z0-9_-]{24}")
TTL_S = 3600


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    # Its own server: a test here stops it, which must not disturb other modules.
    server = RedisServer()
    server.start()
    yield server
    server.close()


@dataclass
class App:
    client: httpx.AsyncClient
    runtime: VoiceRuntime
    settings: Settings


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path, redis: RedisServer
) -> AsyncIterator[App]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("feedback"),
        whisper_model_dir=whisper_model_dir,
        state_url=redis.url,
        workers=2,
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=100,
        voice_v2_features={"stt_enabled": True, "tts_enabled": True},
        request_memory_ttl_s=TTL_S,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        runtime: VoiceRuntime = application.state.runtime
        # Everyone on v2 but one user, who stays on the legacy service.
        await runtime.flags.deny(LEGACY_USER, actor="test", reason="feedback per system")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift", timeout=120) as client:
            yield App(client, runtime, settings)


async def speak(app: App, text: str, user: str) -> httpx.Response:
    return await app.client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav", "language": "en"},
        headers={"X-User-Id": user, "X-Agent-Id": AGENT},
    )


async def transcribe(app: App, audio: bytes, user: str) -> httpx.Response:
    return await app.client.post(
        "/v1/audio/transcriptions",
        files={"file": ("note.wav", audio)},
        data={"model": "whisper-1", "language": "en"},
        headers={"X-User-Id": user, "X-Agent-Id": AGENT},
    )


async def rate(app: App, body: Any) -> httpx.Response:
    return await app.client.post("/v1/feedback", json=body)


@pytest.fixture(scope="module")
async def note(app: App) -> bytes:
    spoken = await speak(app, "Please call me back tomorrow morning.", V2_USER)
    assert spoken.status_code == 200, spoken.text
    return spoken.content


def request_id(response: httpx.Response) -> str:
    rid = response.headers["X-Voxshift-Request-Id"]
    assert REQUEST_ID.fullmatch(rid), rid
    return rid


async def written(app: App) -> None:
    """Until the request ids queued so far are in the state store (the writer runs in the background)."""
    for _ in range(500):
        if app.runtime.feedback.memory.pending == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("request ids were not written")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_every_voice_answer_names_a_request_remembered_in_the_v2_namespace(
    app: App, note: bytes
) -> None:
    answers = [
        await speak(app, "A second sentence.", V2_USER),
        await transcribe(app, note, V2_USER),
        await app.client.post(
            "/v2/transcribe",
            files={"file": ("n.wav", note)},
            data={"language": "en"},
            headers={"X-User-Id": "u9"},
        ),
        await app.client.post("/v2/synthesize", json={"text": "Native.", "language": "en", "user_id": "u9"}),
        await app.client.post(
            "/v1/audio/translations",
            files={"file": ("n.wav", note)},
            data={"model": "whisper-1"},
            headers={"X-User-Id": V2_USER},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    ids = [request_id(a) for a in answers]
    assert len(set(ids)) == len(ids)
    # An error answer names its request too (it cannot be rated: nothing answered it).
    refused = await app.client.post(
        "/v1/audio/speech", json={"model": "nope", "input": "x", "voice": "alloy"}
    )
    assert refused.status_code == 400 and request_id(refused) not in ids
    too_big = await app.client.post(
        "/v1/audio/speech",
        content=b"{" + b" " * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413 and REQUEST_ID.fullmatch(too_big.headers["X-Voxshift-Request-Id"])
    # Other endpoints do not.
    assert "X-Voxshift-Request-Id" not in (await app.client.get("/v1/models")).headers

    await written(app)
    raw = open_state_store(redis_url(app))
    try:
        stored = await raw.get(f"voice_v2:requests:{ids[1]}")
        assert stored is not None
        record = json.loads(stored)
        assert record["system"] == "voice_v2" and record["operation"] == "stt"
        assert (record["user_id"], record["agent_id"], record["provider"]) == (V2_USER, AGENT, "whisper")
        assert record["fallback"] is False
        ttl = await raw.ttl(f"voice_v2:requests:{ids[1]}")
        assert ttl is not None and TTL_S - 60 < ttl <= TTL_S
        assert await raw.get(f"requests:{ids[1]}") is None  # never outside the v2 namespace
    finally:
        await raw.aclose()


def redis_url(app: App) -> str:
    assert app.settings.state_url is not None
    return app.settings.state_url


async def test_ratings_are_filed_under_the_system_that_answered(app: App, note: bytes) -> None:
    since = app.runtime.feedback.clock()
    on_v2 = [await transcribe(app, note, V2_USER) for _ in range(2)]
    on_legacy = await transcribe(app, note, LEGACY_USER)
    spoken = await speak(app, "Rate this voice.", V2_USER)
    assert [r.headers["X-Voxshift-System"] for r in (*on_v2, on_legacy, spoken)] == [
        "voice_v2",
        "voice_v2",
        "legacy",
        "voice_v2",
    ]
    ratings = [(on_v2[0], 5), (on_v2[1], 2), (on_legacy, 3), (spoken, 4)]
    filed = []
    for answer, stars in ratings:
        response = await rate(app, {"request_id": request_id(answer), "rating": stars, "comment": "ok"})
        assert response.status_code == 201, response.text
        filed.append(response.json())
    assert [(f["system"], f["operation"], f["rating"]) for f in filed] == [
        ("voice_v2", "stt", 5),
        ("voice_v2", "stt", 2),
        ("legacy", "stt", 3),
        ("voice_v2", "tts", 4),
    ]
    assert filed[0]["request_id"] == request_id(on_v2[0]) and filed[0]["object"] == "feedback"
    assert len({f["id"] for f in filed}) == 4 and all(since <= f["at"] for f in filed)

    # The rows carry who was served, from the request, not from the rating.
    db = await Database.open(app.settings.resolved_database_url)
    try:
        rows = {r.id: r for r in await FeedbackRepository(db).list(limit=100)}
    finally:
        await db.aclose()
    legacy_row = rows[filed[2]["id"]]
    assert (legacy_row.user_id, legacy_row.agent_id, legacy_row.system) == (LEGACY_USER, AGENT, "legacy")
    assert legacy_row.comment == "ok"

    window = await app.runtime.feedback.window(since)
    v2_stt = window.of("voice_v2", "stt")
    assert (v2_stt.count, v2_stt.total, v2_stt.total_sq) == (2, 7, 29)
    assert v2_stt.mean == 3.5
    assert window.of("legacy", "stt").count == 1 and window.of("legacy", "stt").mean == 3.0
    assert window.of("voice_v2", "tts").mean == 4.0
    assert window.of("voice_v2").count == 3
    # [since, until): a window ending before the ratings has none.
    assert (await app.runtime.feedback.window(since - 60, since)).ratings == {}


async def test_one_rating_per_request(app: App, note: bytes) -> None:
    rid = request_id(await transcribe(app, note, V2_USER))
    assert (await rate(app, {"request_id": rid, "rating": 4})).status_code == 201
    again = await rate(app, {"request_id": rid, "rating": 1})
    error = error_of(again, 409)
    assert (error["param"], error["code"], error["type"]) == (
        "request_id",
        "already_rated",
        "invalid_request_error",
    )


async def test_unknown_or_malformed_ids_are_404_and_bad_bodies_400(app: App, note: bytes) -> None:
    for unknown in ("req_" + "A" * 24, "req_123", "something-else"):
        error = error_of(await rate(app, {"request_id": unknown, "rating": 3}), 404)
        assert error["param"] == "request_id" and unknown in error["message"]

    rid = request_id(await transcribe(app, note, V2_USER))
    bad: list[tuple[dict[str, Any], str]] = [
        ({"request_id": rid, "rating": 0}, "rating"),
        ({"request_id": rid, "rating": 6}, "rating"),
        ({"request_id": rid, "rating": "x"}, "rating"),
        ({"request_id": rid, "rating": "4"}, "rating"),
        ({"request_id": rid, "rating": 4.5}, "rating"),
        ({"request_id": rid, "rating": True}, "rating"),
        ({"request_id": rid}, "rating"),
        ({"rating": 3}, "request_id"),
        ({"request_id": "", "rating": 3}, "request_id"),
        ({"request_id": rid, "rating": 3, "comment": "x" * 2001}, "comment"),
        ({"request_id": rid, "rating": 3, "comment": 7}, "comment"),
        ({"request_id": rid, "rating": 3, "stars": 3}, "stars"),
    ]
    for body, param in bad:
        assert error_of(await rate(app, body), 400)["param"] == param, body
    not_json = await app.client.post(
        "/v1/feedback", content=b"{", headers={"Content-Type": "application/json"}
    )
    error_of(not_json, 400)
    # None of those used up the request's one rating.
    ok = await rate(app, {"request_id": rid, "rating": 5, "comment": "x" * 2000})
    assert ok.status_code == 201 and ok.json()["rating"] == 5


async def test_cli_add_and_stats_on_the_servers_stores(app: App, note: bytes) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env |= {"VOXSHIFT_DATA_DIR": str(app.settings.data_dir), "VOXSHIFT_STATE_URL": redis_url(app)}

    async def voxshift(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.to_thread(cli, env, *args, process=True)
        return proc.returncode, proc.stdout, proc.stderr

    # Two legacy ratings at least, so the interval exists whichever tests ran before.
    other = request_id(await transcribe(app, note, LEGACY_USER))
    assert (await rate(app, {"request_id": other, "rating": 2})).status_code == 201
    before = await app.runtime.feedback.stats(1)
    rid = request_id(await transcribe(app, note, LEGACY_USER))
    await written(app)

    code, out, err = await voxshift("feedback", "add", rid, "5", "--comment", "clear", "--json")
    assert code == 0, err
    filed = json.loads(out)
    assert (filed["request_id"], filed["rating"], filed["system"], filed["operation"]) == (
        rid,
        5,
        "legacy",
        "stt",
    )

    for args, needle in [
        (("feedback", "add", rid, "4"), "rated already"),
        (("feedback", "add", "req_" + "B" * 24, "4"), "unknown or expired"),
        (("feedback", "add", rid, "9"), "from 1 to 5"),
        (("feedback", "add", rid, "x"), "from 1 to 5"),
        (("feedback", "add", rid, "3", "--comment", "y" * 2001), "at most 2000"),
    ]:
        code, out, err = await voxshift(*args)
        assert code == 2 and out == "", (args, out, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, (args, err)

    code, out, err = await voxshift("feedback", "stats", "--hours", "1", "--json")
    assert code == 0, err
    stats = {(s["system"], s["operation"]): s for s in json.loads(out)["ratings"]}
    old = {(s.system, s.operation): s for s in before}
    legacy = stats["legacy", "stt"]
    assert legacy["count"] == old["legacy", "stt"].count + 1
    service_view = {(s.system, s.operation): s for s in await app.runtime.feedback.stats(1)}
    assert legacy["mean"] == round(service_view["legacy", "stt"].mean or 0, 3)
    low, high = legacy["ci95"]
    assert 1 <= low <= legacy["mean"] <= high <= 5

    code, out, err = await voxshift("feedback", "stats", "--hours", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["system", "op", "ratings", "mean", "95%", "interval"]
    assert any(line.split()[:3] == ["legacy", "stt", str(legacy["count"])] for line in lines[2:])

    code, _, err = await voxshift("feedback", "stats", "--hours", "0")
    assert code == 2 and "Traceback" not in err


# Last: Redis comes back empty, and the tests above rely on what it held.
async def test_a_state_store_outage_costs_the_memory_not_the_request(
    app: App, note: bytes, redis: RedisServer
) -> None:
    memory = app.runtime.feedback.memory
    dropped = memory.counts.dropped
    redis.stop()
    try:
        answer = await transcribe(app, note, V2_USER)
        assert answer.status_code == 200, answer.text
        rid = request_id(answer)
        for _ in range(500):  # the writer gives the record up at once: the store is down
            if memory.counts.dropped > dropped:
                break
            await asyncio.sleep(0.01)
        assert memory.counts.dropped == dropped + 1 and memory.pending == 0
        # Rating while the store is down: a 503 with the OpenAI body, never a 500.
        assert error_of(await rate(app, {"request_id": rid, "rating": 4}), 503)["code"] == "store_unavailable"
    finally:
        redis.restart()
    for _ in range(500):  # until the store answers this app again
        response = await rate(app, {"request_id": rid, "rating": 4})
        if response.status_code != 503:
            break
        await asyncio.sleep(0.02)
    assert error_of(response, 404)["param"] == "request_id"
