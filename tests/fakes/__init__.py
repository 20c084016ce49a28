"""Local stand-ins for cloud speech vendors: real HTTP servers speaking each vendor's wire format.

Each fake is a Starlette app served by uvicorn in a background thread on 127.0.0.1 and a free
port. It records every request it receives (so tests can assert the wire format), checks
credentials and validates requests the way the vendor documents, answers with realistic bodies and
real audio, and has switchable faults: the next N requests fail with a status and the vendor's error
body, hang, or get a malformed body.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import uvicorn
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FaultKind = Literal["status", "hang", "malformed"]


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 500
    message: str | None = None
    seconds: float = 0.0


class FakeServer:
    """Server plumbing and the fault switchboard; subclasses add the vendor's routes and bodies."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._closing = False
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- what tests control --------------------------------------------------------------------
    def fail_next(self, status: int, *, times: int = 1, message: str | None = None) -> None:
        self._add(Fault("status", status=status, message=message), times)

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        self._add(Fault("hang", seconds=seconds), times)

    def malformed_next(self, *, times: int = 1) -> None:
        self._add(Fault("malformed"), times)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
        self.reset_state()

    def reset_state(self) -> None:
        """Subclasses restore their configurable answers here."""

    @property
    def origin(self) -> str:
        assert self._sock is not None, "the fake is not running"
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    # --- lifecycle -----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def start(self) -> Self:
        from starlette.applications import Starlette

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            Starlette(routes=self.routes()), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._closing = True  # releases hanging handlers, so shutdown does not wait for them
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- for the subclasses' handlers ----------------------------------------------------------
    def _add(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    async def record(self, request: Request) -> Recorded:
        body = await request.body()
        entry = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        content_type = entry.headers.get("content-type", "")
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            async with request.form(max_part_size=64 * 1024 * 1024) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        entry.files[name] = UploadedFile(value.filename, value.content_type, data)
                    else:
                        entry.form.setdefault(name, []).append(value)
        with self._lock:
            self.requests.append(entry)
        return entry

    async def take_fault(self) -> Fault | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.kind == "hang":
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not self._closing:
                await asyncio.sleep(0.02)
        return fault


def speech_like_pcm(text: str, sample_rate: int, speed: float = 1.0) -> bytes:
    """Voiced, syllable-shaped audio whose length follows the text, as s16le mono PCM.

    About 65 ms per character at speed 1.0, a 140 Hz voice with a few harmonics, and a 4 Hz
    syllable envelope: close enough to speech for level meters, duration checks and encoders.
    """
    seconds = max(0.3, 0.065 * len(text) / max(speed, 0.1))
    t = np.arange(int(seconds * sample_rate), dtype=np.float64) / sample_rate
    voice = sum(np.sin(2 * np.pi * 140.0 * k * t) / k for k in (1, 2, 3, 4))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None) ** 0.5
    signal = 0.3 * voice * envelope
    return (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def text_response(text: str, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(text, status_code=status, media_type=media_type)
