"""Rollout transition webhooks against real local HTTP receivers (uvicorn in a thread): retries with
backoff on 5xx, 429 and connection errors, no retry on other 4xx, a hanging receiver that delays
neither the caller nor another URL, bounded queues that count what they drop, and a Slack-style body.

Backoff waits go through an injected ``sleep`` that records them and a fixed jitter source, so the
delays are asserted as numbers and the tests never wait them out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import FakeServer
from tests.fixtures.redis_server import free_port
from voxshift.services.rollout.webhooks import (
    DELIVERY_HEADER,
    WebhookNotifier,
    retry_after_s,
    slack_text,
    webhook_label,
)

EVENT = {
    "event": "rolled_back",
    "phase": "pilot",
    "summary": "rollout rolled back: pilot",
    "reason": "p95 2100 ms",
}


class Receiver(FakeServer):
    """A webhook endpoint at ``/hook``: records, applies the next injected fault, else answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_after: str | None = None

    @property
    def url(self) -> str:
        return self.origin + "/hook"

    def routes(self) -> list[Route]:
        return [Route("/hook", self._hook, methods=["POST"])]

    async def _hook(self, request: Request) -> Response:
        entry = await self.record(request)
        entry.json = json.loads(entry.body)
        fault = await self.take_fault()
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return JSONResponse({"error": "injected"}, status_code=fault.status, headers=headers)
        return Response("ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


class Waits:
    """The notifier's backoff ``sleep``: records each delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest_asyncio.fixture(loop_scope="function")
async def waits() -> AsyncIterator[Waits]:
    yield Waits()


def notifier(urls: list[str], waits: Waits, **options: Any) -> WebhookNotifier:
    return WebhookNotifier(urls, sleep=waits, rand=lambda: 0.5, **options)


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds; the bound only keeps a broken run from hanging."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_two_503s_then_success_is_one_delivery_in_three_attempts(
    receiver: Receiver, waits: Waits
) -> None:
    receiver.fail_next(503, times=2)
    hooks = notifier([receiver.url], waits)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert (hooks.sent, hooks.failed, hooks.dropped) == (1, 0, 0)
    stats = hooks.stats()[webhook_label(receiver.url)]
    assert stats.attempts == 3 and stats.last_error == "HTTP 503"
    assert waits.delays == [0.5, 1.0]  # exponential from 0.5 s (jitter source fixed at its midpoint)
    assert len(receiver.requests) == 3
    ids = {r.headers[DELIVERY_HEADER.lower()] for r in receiver.requests}
    assert len(ids) == 1  # the same delivery each time, so a receiver can deduplicate
    assert [r.json for r in receiver.requests] == [receiver.requests[0].json] * 3


async def test_the_body_is_the_event_as_json_with_a_slack_text(receiver: Receiver, waits: Waits) -> None:
    hooks = notifier([receiver.url], waits)
    await hooks.start()
    hooks.notify(EVENT)
    hooks.notify({"event": "promoted", "text": "canary -> pilot", "at": datetime(2026, 1, 2, tzinfo=UTC)})
    assert await hooks.drain(30)
    await hooks.aclose()
    first, second = receiver.requests
    assert first.headers["content-type"] == "application/json"
    assert first.json == {**EVENT, "text": "rollout rolled back: pilot - p95 2100 ms"}
    assert second.json == {"event": "promoted", "text": "canary -> pilot", "at": "2026-01-02 00:00:00+00:00"}
    assert slack_text({"event": "paused"}) == "voxshift rollout: paused"
    assert slack_text({"reason": "operator"}) == "operator"


async def test_a_400_is_not_retried(receiver: Receiver, waits: Waits) -> None:
    receiver.fail_next(400)
    hooks = notifier([receiver.url], waits)
    await hooks.start()
    hooks.notify(EVENT)
    hooks.notify(EVENT)  # the next event is still delivered
    assert await hooks.drain(30)
    await hooks.aclose()
    assert (hooks.sent, hooks.failed) == (1, 1)
    assert hooks.last_error == "HTTP 400"
    assert len(receiver.requests) == 2 and waits.delays == []


async def test_gives_up_after_five_attempts_with_growing_backoff(receiver: Receiver, waits: Waits) -> None:
    receiver.fail_next(502, times=10)
    hooks = notifier([receiver.url], waits)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert (hooks.sent, hooks.failed) == (0, 1)
    assert len(receiver.requests) == 5
    assert waits.delays == [0.5, 1.0, 2.0, 4.0]


async def test_jitter_spreads_the_backoff_around_the_exponential(receiver: Receiver) -> None:
    receiver.fail_next(503, times=2)
    waits = Waits()
    hooks = WebhookNotifier([receiver.url], sleep=waits, rand=lambda: 1.0, jitter=0.2, backoff_s=0.1)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert waits.delays == pytest.approx([0.12, 0.24])


async def test_429_honours_retry_after_up_to_the_cap(receiver: Receiver, waits: Waits) -> None:
    receiver.fail_next(429, times=2)
    receiver.retry_after = "120"
    hooks = notifier([receiver.url], waits, retry_after_cap_s=30)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    receiver.retry_after = "3"
    receiver.fail_next(503)
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert hooks.sent == 2 and waits.delays == [30.0, 30.0, 3.0]


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert retry_after_s("7") == 7.0
    assert (
        retry_after_s(format_datetime(datetime(2026, 1, 2, 3, 4, 15, tzinfo=UTC), usegmt=True), now=now)
        == 10.0
    )
    assert retry_after_s(format_datetime(datetime(2026, 1, 1, tzinfo=UTC), usegmt=True), now=now) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None and retry_after_s("") is None


async def test_connection_errors_are_retried(waits: Waits) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    hooks = notifier([url], waits, max_attempts=3)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert (hooks.sent, hooks.failed) == (0, 1)
    assert hooks.last_error is not None and hooks.last_error.startswith("ConnectError")
    assert waits.delays == [0.5, 1.0]


async def test_a_timed_out_attempt_is_retried(receiver: Receiver, waits: Waits) -> None:
    receiver.hang_next(60)
    hooks = notifier([receiver.url], waits, timeout_s=0.2)
    await hooks.start()
    hooks.notify(EVENT)
    assert await hooks.drain(30)
    await hooks.aclose()
    assert hooks.sent == 1 and len(receiver.requests) == 2
    assert hooks.last_error is not None and hooks.last_error.startswith("ReadTimeout")


async def test_a_hanging_receiver_blocks_neither_the_caller_nor_another_url(
    receiver: Receiver, other_receiver: Receiver, waits: Waits
) -> None:
    receiver.hang_next(60)
    hooks = notifier([receiver.url, other_receiver.url], waits, timeout_s=30, grace_s=0.1)
    await hooks.start()
    for i in range(3):
        hooks.notify({**EVENT, "n": i})  # returns at once: notify is not even a coroutine
    slow, fast = (hooks.stats()[webhook_label(r.url)] for r in (receiver, other_receiver))
    await until(lambda: fast.sent == 3)
    assert [r.json["n"] for r in other_receiver.requests] == [0, 1, 2]
    assert slow.sent == 0 and len(receiver.requests) == 1  # the first event is still hanging there
    await hooks.aclose()  # the grace runs out: what the slow URL did not deliver is dropped
    assert (slow.sent, slow.dropped, fast.dropped) == (0, 3, 0)
    assert hooks.dropped == 3


async def test_a_full_queue_drops_the_oldest_and_counts_it(receiver: Receiver, waits: Waits) -> None:
    hooks = notifier([receiver.url], waits, queue_size=3)
    for i in range(5):
        hooks.notify({**EVENT, "n": i})  # not started yet: everything queues
    assert hooks.dropped == 2
    await hooks.start()
    assert await hooks.drain(30)
    await hooks.aclose()
    assert [r.json["n"] for r in receiver.requests] == [2, 3, 4]
    assert (hooks.sent, hooks.dropped) == (3, 2)
    hooks.notify(EVENT)  # after close: counted, never sent
    assert hooks.dropped == 3


def test_labels_hide_the_secret_path_of_chat_webhooks() -> None:
    one, two = (webhook_label(f"https://hooks.slack.com/services/T0/B0/secret{i}") for i in (1, 2))
    assert one.startswith("https://hooks.slack.com/...#") and "secret" not in one
    assert one != two  # two hooks on one host stay apart in stats()
    assert webhook_label("http://127.0.0.1:8080/hook?token=x").startswith("http://127.0.0.1:8080/...#")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        WebhookNotifier(["http://x/"], max_attempts=0)
    with pytest.raises(ValueError):
        WebhookNotifier(["http://x/"], jitter=1.5)
