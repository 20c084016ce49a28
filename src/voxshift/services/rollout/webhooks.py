"""Rollout transitions POSTed as JSON to the configured webhook URLs, never blocking the controller.

:meth:`WebhookNotifier.notify` only serialises the event and appends it to a bounded queue per URL;
one task per URL delivers in order. Each URL has its own queue and task, so a slow or hanging
receiver delays nothing but its own later events. Delivery is at least once: a request that timed
out may have arrived, so it is retried like a connection error; receivers can deduplicate on the
``X-Voxshift-Delivery`` header.

Retried: connection errors and timeouts, 429 and 5xx, up to ``max_attempts`` attempts, waiting
``backoff_s * 2**n`` (capped at ``max_backoff_s``) with +/-``jitter`` of it, or the receiver's
``Retry-After`` (seconds or an HTTP date) capped at ``retry_after_cap_s``. Any other 4xx is a
permanent refusal: counted as failed, not retried.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("voxshift.rollout.webhooks")

DELIVERY_HEADER = "X-Voxshift-Delivery"


@dataclass
class WebhookStats:
    """Counters of one URL: ``attempts`` counts every POST, the rest count events."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class _Delivery:
    id: str
    body: bytes


@dataclass
class _Target:
    url: str
    queue: deque[_Delivery]
    stats: WebhookStats = field(default_factory=WebhookStats)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return not self.queue and not self.busy


class _Refused(Exception):
    """A permanent refusal (a 4xx other than 429): sending it again cannot help."""


class _Retry(Exception):
    """A failed attempt worth repeating; ``wait_s`` is the receiver's Retry-After when it sent one."""

    def __init__(self, error: str, wait_s: float | None = None) -> None:
        super().__init__(error)
        self.wait_s = wait_s


def webhook_label(url: str) -> str:
    """A URL as logs and status may show it: chat webhooks carry their secret in the path
    (``hooks.slack.com/services/T../B../secret``), so only the scheme and host are kept, plus a
    short digest that tells two hooks on one host apart."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{parts.host}{port}/...#{digest}"


def slack_text(event: Mapping[str, Any]) -> str:
    """A Slack-compatible ``text`` for an event that has none: its summary and reason."""
    parts = [str(event[k]) for k in ("summary", "reason") if event.get(k)]
    if not parts:
        parts = [f"voxshift rollout: {event.get('event') or event.get('state') or 'transition'}"]
    return " - ".join(parts)


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebhookNotifier:
    """POST every event to each of ``urls``; ``start()`` in the running loop, ``aclose()`` at the end.

    ``client`` is for tests and sharing; by default the notifier opens (and closes) its own.
    ``sleep`` and ``rand`` are the backoff's clock and jitter source, replaceable in tests.
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        jitter: float = 0.2,
        retry_after_cap_s: float = 30.0,
        queue_size: int = 100,
        grace_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1 or queue_size < 1:
            raise ValueError("max_attempts and queue_size must be at least 1")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self._targets = [_Target(url, deque(maxlen=queue_size)) for url in dict.fromkeys(urls)]
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter = jitter
        self.retry_after_cap_s = retry_after_cap_s
        self.grace_s = grace_s
        self._sleep = sleep
        self._rand = rand
        self._closed = False
        self._last_error: str | None = None

    @property
    def urls(self) -> list[str]:
        return [t.url for t in self._targets]

    # --- counters, summed over URLs (per URL: stats()) -------------------------------------------
    @property
    def sent(self) -> int:
        return sum(t.stats.sent for t in self._targets)

    @property
    def failed(self) -> int:
        return sum(t.stats.failed for t in self._targets)

    @property
    def dropped(self) -> int:
        return sum(t.stats.dropped for t in self._targets)

    @property
    def last_error(self) -> str | None:
        """The most recent failed attempt's error, whichever URL it was."""
        return self._last_error

    def stats(self) -> dict[str, WebhookStats]:
        """Per URL, keyed by :func:`webhook_label` (the full URL may hold a secret)."""
        return {webhook_label(t.url): t.stats for t in self._targets}

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """One delivery task per URL (idempotent); events queued before this are sent now.
        (A coroutine only so that it reads like the other services' ``await x.start()``.)"""
        if self._closed:
            raise RuntimeError("the webhook notifier is closed")
        for target in self._targets:
            if target.task is None:
                target.task = asyncio.create_task(
                    self._run(target), name=f"webhook {webhook_label(target.url)}"
                )

    def notify(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for every URL and return at once; a full queue drops its oldest event."""
        body = dict(event)
        if not body.get("text"):
            body["text"] = slack_text(event)
        delivery = _Delivery(uuid.uuid4().hex, json.dumps(body, default=str).encode())
        for target in self._targets:
            if self._closed:
                target.stats.dropped += 1
                continue
            if len(target.queue) == target.queue.maxlen:
                target.stats.dropped += 1  # the deque's maxlen pushes the oldest out
                log.warning("webhook %s queue full: dropped the oldest event", webhook_label(target.url))
            target.queue.append(delivery)
            target.wake.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queue is empty and no delivery is in flight; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not all(t.idle for t in self._targets):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self) -> None:
        """Give queued deliveries ``grace_s`` to finish, then cancel; what is left counts as dropped."""
        if self._closed:
            return
        self._closed = True
        if any(t.task is not None for t in self._targets):
            await self.drain(self.grace_s)
        tasks = [t.task for t in self._targets if t.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for target in self._targets:
            target.stats.dropped += len(target.queue)
            target.queue.clear()
            target.task = None
        if self._own_client:
            await self._client.aclose()

    # --- delivery --------------------------------------------------------------------------------
    async def _run(self, target: _Target) -> None:
        while True:
            if not target.queue:
                target.wake.clear()
                await target.wake.wait()
                continue
            delivery = target.queue.popleft()
            target.busy = True
            try:
                await self._deliver(target, delivery)
            except asyncio.CancelledError:
                target.stats.dropped += 1  # aclose's grace ran out mid-delivery
                raise
            finally:
                target.busy = False

    async def _deliver(self, target: _Target, delivery: _Delivery) -> None:
        stats = target.stats
        for attempt in range(1, self.max_attempts + 1):
            stats.attempts += 1
            try:
                await self._post(target.url, delivery)
            except _Retry as retry:
                stats.last_error = self._last_error = str(retry)
                if attempt == self.max_attempts:
                    break
                await self._sleep(self._delay(attempt, retry.wait_s))
            except _Refused as refused:
                stats.last_error = self._last_error = str(refused)
                stats.failed += 1
                log.warning("webhook %s refused an event: %s", webhook_label(target.url), refused)
                return
            else:
                stats.sent += 1
                return
        stats.failed += 1
        log.warning(
            "webhook %s failed after %d attempts: %s",
            webhook_label(target.url),
            self.max_attempts,
            stats.last_error,
        )

    async def _post(self, url: str, delivery: _Delivery) -> None:
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery.id}
        try:
            response = await self._client.post(
                url, content=delivery.body, headers=headers, timeout=self.timeout_s
            )
        except httpx.TransportError as exc:  # connect, read, write and pool errors and timeouts
            raise _Retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        status = response.status_code
        if status < 300:
            return
        error = f"HTTP {status}"
        if status == 429 or status >= 500:
            raise _Retry(error, retry_after_s(response.headers.get("Retry-After")))
        raise _Refused(error)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s)
        base = min(self.backoff_s * 2.0 ** (attempt - 1), self.max_backoff_s)
        return base * (1 + self.jitter * (2 * self._rand() - 1))
