"""Health of the optional backends (state store, object storage): degrade, never fail a request.

A dead Redis or S3 must not take voice down. Every call through :meth:`Dependency.call` that raises
``StoreUnavailable`` marks the dependency down and returns the caller's fallback; while it is down,
calls are skipped at once (no connect timeout per request). A monitor pings every dependency
periodically, so /readyz reports the outage and the dependency comes back by itself when its
server does, without any request paying for the probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from voxshift.errors import StoreUnavailable
from voxshift.services.wiring.background import BackgroundLoop

log = logging.getLogger("voxshift.dependencies")
T = TypeVar("T")


@dataclass
class DependencyStatus:
    name: str
    up: bool
    since: float  # time.time() of the last change
    error: str | None
    failures: int  # calls that fell back since start


class Dependency:
    def __init__(self, name: str, ping: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._ping = ping
        self._up = True
        self._since = time.time()
        self._error: str | None = None
        self._failures = 0

    @property
    def up(self) -> bool:
        return self._up

    def status(self) -> DependencyStatus:
        return DependencyStatus(self.name, self._up, self._since, self._error, self._failures)

    def mark_down(self, error: str) -> None:
        self._error = error
        if self._up:
            self._up = False
            self._since = time.time()
            log.warning("%s is unavailable, degrading: %s", self.name, error)

    def mark_up(self) -> None:
        if not self._up:
            self._up = True
            self._since = time.time()
            log.warning("%s is back", self.name)
        self._error = None

    async def call(self, fn: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``fn()``, or ``fallback`` when the dependency is down or fails now."""
        if not self._up:
            self._failures += 1
            return fallback
        try:
            return await fn()
        except StoreUnavailable as exc:
            self._failures += 1
            self.mark_down(exc.message)
            return fallback

    async def probe(self) -> bool:
        try:
            await self._ping()
        except StoreUnavailable as exc:
            self.mark_down(exc.message)
            return False
        except Exception as exc:  # a ping must never kill the monitor
            self.mark_down(f"{type(exc).__name__}: {exc}")
            return False
        self.mark_up()
        return True


class DependencyMonitor:
    """Pings every dependency each ``interval_s`` in the background."""

    def __init__(self, dependencies: list[Dependency], interval_s: float = 1.0) -> None:
        self.dependencies = dependencies
        self.interval_s = interval_s
        self._loop = BackgroundLoop(
            "voxshift-dependency-monitor", self.probe_all, interval_s=interval_s, logger=log
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def probe_all(self) -> None:
        """One round: ping every dependency at once (a probe never raises)."""
        await asyncio.gather(*(d.probe() for d in self.dependencies))

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dep in self.dependencies:
            status = dep.status()
            out[dep.name] = {
                "up": status.up,
                "since": round(status.since, 3),
                "fallbacks": status.failures,
                **({"error": status.error} if status.error else {}),
            }
        return out

    @property
    def degraded(self) -> list[str]:
        return [d.name for d in self.dependencies if not d.up]
