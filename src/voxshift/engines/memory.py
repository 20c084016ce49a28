"""Give memory back to the system after bursts of inference (glibc only; a no-op elsewhere).

Measured with bench/soak.py (16 clients, 2 workers): glibc gives each thread that allocates its
own malloc arena, and ONNX Runtime, CTranslate2 and PyAV allocate from the pool's threads, so the
server ended a 2-minute soak at 1.42x the RSS it started with, though nothing was kept alive.
Two arenas and a ``malloc_trim`` whenever a pool falls idle bring that back to about the start.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

log = logging.getLogger("voxshift.memory")

_M_ARENA_MAX = -8  # mallopt parameter from glibc's malloc.h
_TRIM_EVERY_S = 1.0

_libc: ctypes.CDLL | None = None
_lock = threading.Lock()
_last_trim = 0.0


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            # glibc's soname; not ctypes.util.find_library, which runs ldconfig in a child process.
            libc = ctypes.CDLL("libc.so.6")
            libc.malloc_trim  # noqa: B018 - raises AttributeError on a libc without it (musl)
            libc.mallopt  # noqa: B018
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def limit_malloc_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas for the process; call before the worker threads start."""
    libc = _glibc()
    if libc is None or arenas < 1:
        return False
    ok = bool(libc.mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas)))
    if not ok:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return ok


def trim() -> bool:
    """Return free heap memory to the system, at most once a second (it walks every arena)."""
    global _last_trim
    libc = _glibc()
    if libc is None:
        return False
    with _lock:
        now = time.monotonic()
        if now - _last_trim < _TRIM_EVERY_S:
            return False
        _last_trim = now
    libc.malloc_trim(ctypes.c_size_t(0))
    return True
