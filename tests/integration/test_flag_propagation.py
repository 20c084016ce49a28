"""A flag change made in one OS process reaches FeatureFlags running in another.

The child is a separate Python process (``subprocess``) running FeatureFlags on the shared state
store and settings database, printing the routing decision for one user every time its config
changes. The parent lowers the rollout percentage and flips the kill switch with its own
FeatureFlags; a third process (the ``voxshift flags`` CLI) raises it in between. Each change must
be seen by the child; the measured latency (write started -> child applied, both on the host's
monotonic clock) is printed and recorded, not asserted: speed belongs to benchmarks. The design
target is 1 s (pub/sub, with a 250 ms poll as the fallback, which the ``poll-only`` case isolates).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from voxshift.core.flags import Features, FlagConfig, PerOperation, bucket
from voxshift.services.flags.service import FeatureFlags
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import FlagConfigRepository
from voxshift.stores.state import NamespacedStore, open_state_store

ROOT = Path(__file__).resolve().parents[2]
USER = next(f"user-{i}" for i in range(1000) if 20 <= bucket(f"user-{i}") < 50)
LINE_TIMEOUT_S = 20.0  # how long to wait for the child at all; not a latency bound
START = FlagConfig(enabled=True, features=Features(True, True), percentages=PerOperation(50, 50))

CHILD = """
import asyncio, json, sys, time
from voxshift.core.flags import FlagConfig
from voxshift.services.flags.service import FeatureFlags
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import FlagConfigRepository
from voxshift.stores.state import NamespacedStore, open_state_store

async def main(state_url, db_url, user, listen):
    raw = open_state_store(state_url)
    db = Database(db_url)
    flags = FeatureFlags(NamespacedStore(raw, "voice_v2"), FlagConfigRepository(db), FlagConfig(),
                         listen=listen == "1")

    def report(old, new):
        d = flags.decide("stt", user)
        line = {"version": new.version, "use_v2": d.use_v2, "reason": d.reason, "t": time.monotonic()}
        print(json.dumps(line), flush=True)

    await flags.start()
    report(None, flags.config)
    flags.on_change(report)
    await asyncio.to_thread(sys.stdin.readline)  # the parent closes stdin to stop us
    await flags.stop()
    await raw.aclose()
    await db.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


class Child:
    def __init__(self, state_url: str, db_url: str, listen: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, state_url, db_url, USER, "1" if listen else "0"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    async def until(self, reason: str) -> dict[str, Any]:
        """The first reported decision with ``reason`` (earlier intermediate versions are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINE_TIMEOUT_S
        while True:
            wait = deadline - loop.time()
            try:
                line = await asyncio.to_thread(self.lines.get, True, max(wait, 0.01))
            except queue.Empty:
                raise AssertionError(f"the child never reported {reason!r}: {self._stderr()}") from None
            if line["reason"] == reason:
                return line

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:]

    def stop(self) -> None:
        """End our child only: close its stdin, then wait (terminate this pid if it hangs)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(params=["redis", "redis-poll-only", "sqlite"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, bool]:
    kind = str(request.param)
    state_url = (
        request.getfixturevalue("clean_redis").url
        if kind.startswith("redis")
        else f"sqlite:///{tmp_path / 'state.db'}"
    )
    return kind, state_url, kind != "redis-poll-only"


@pytest_asyncio.fixture(loop_scope="function")
async def parent(case: tuple[str, str, bool], tmp_path: Path) -> AsyncIterator[tuple[FeatureFlags, str]]:
    _, state_url, _ = case
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'settings.db'}"
    db = await Database.open(db_url)  # brings the schema to head before the child opens it
    raw = open_state_store(state_url)
    flags = FeatureFlags(NamespacedStore(raw, "voice_v2"), FlagConfigRepository(db), START)
    await flags.start(watch=False)
    yield flags, db_url
    await raw.aclose()
    await db.aclose()


async def _timed(change: Callable[[], Any], child: Child, reason: str) -> float:
    started = time.monotonic()
    await change()
    seen = await child.until(reason)
    return float(seen["t"]) - started


async def test_kill_switch_and_percentage_changes_reach_another_process(
    case: tuple[str, str, bool],
    parent: tuple[FeatureFlags, str],
    record_property: Callable[[str, object], None],
) -> None:
    kind, state_url, listen = case
    flags, db_url = parent
    child = Child(state_url, db_url, listen)
    try:
        ready = await child.until("in_cohort")  # bucket 20..49 < 50%
        assert ready["version"] == flags.config.version and ready["use_v2"] is True
        lowered = await _timed(
            lambda: flags.set_percentage("stt", 10, actor="test", reason="lower"), child, "out_of_cohort"
        )
        cli = await _timed(lambda: _cli_raise(state_url, db_url), child, "percentage_100")
        killed = await _timed(lambda: flags.kill(actor="test", reason="drill"), child, "kill_switch")
    finally:
        child.stop()
    assert child.proc.returncode == 0
    figures = {"lower_s": round(lowered, 4), "kill_s": round(killed, 4), "cli_process_s": round(cli, 4)}
    for name, value in figures.items():
        record_property(f"{kind}_{name}", value)
    print(
        f"\n[{kind}] applied in the other process after: percentage decrease {lowered * 1000:.0f} ms, "
        f"kill switch {killed * 1000:.0f} ms; CLI raise (from the CLI process start) {cli * 1000:.0f} ms"
    )


async def _cli_raise(state_url: str, db_url: str) -> None:
    """A third process: `voxshift flags set --stt-percentage 100` on the same stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env |= {"VOXSHIFT_STATE_URL": state_url, "VOXSHIFT_DATABASE_URL": db_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "voxshift.cli", "flags", "set", "--stt-percentage", "100", "--reason", "third process"),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"percentages.stt: 10 -> 100" in out
