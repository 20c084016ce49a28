"""Run a helper program (espeak-ng) from a process full of inference threads, without fork().

fork() runs every pthread_atfork handler in the parent first. The OpenBLAS bundled with numpy
registers one that joins its worker threads, which can wait forever while other threads are inside
BLAS (Whisper's feature extraction): the whole server then hangs in fork. uvloop, which uvicorn
uses, spawns children with libuv's fork(); so does any ``preexec_fn``. ``os.posix_spawn`` in glibc
(>= 2.24) creates the child with clone(CLONE_VM | CLONE_VFORK) and runs no fork handlers at all,
whatever the event loop, so every child process voxshift starts while serving goes through here.

Synchronous on purpose: callers run it on an inference-pool worker, which bounds how many helpers
run at once and gives each a deadline.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

_READ_CHUNK = 64 * 1024
# Python ignores SIGPIPE; an ignored signal stays ignored across exec, so restore the defaults the
# way subprocess does (restore_signals=True).
_DEFAULT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


class SpawnTimeout(TimeoutError):
    """The program did not finish in time; it has been killed and reaped."""


def run_process(
    argv: Sequence[str],
    stdin: bytes = b"",
    *,
    timeout_s: float,
    max_output_bytes: int = 512 * 1024 * 1024,
) -> Completed:
    """Run ``argv`` (``argv[0]`` an absolute path) with ``stdin``, collect its output, reap it.

    The child gets only the three pipes (every fd Python opens is close-on-exec). On timeout or
    when the output passes ``max_output_bytes`` the child is killed; ``OSError`` if it cannot start.
    """
    path = argv[0]
    if not os.path.isabs(path):
        raise ValueError(f"run_process needs an absolute program path, got {path!r}")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(
            path,
            list(argv),
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsigdef=_DEFAULT_SIGNALS,
        )
    except BaseException:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    # Each fd closed exactly once: a second close could hit a number another thread reopened.
    open_fds = {in_w, out_r, err_r}
    try:
        stdout, stderr = _communicate(open_fds, in_w, out_r, err_r, stdin, timeout_s, max_output_bytes)
    except BaseException:
        _kill(pid)
        raise
    finally:
        for fd in open_fds:
            os.close(fd)
    _, status = os.waitpid(pid, 0)
    return Completed(os.waitstatus_to_exitcode(status), stdout, stderr)


def _communicate(
    open_fds: set[int], in_w: int, out_r: int, err_r: int, data: bytes, timeout_s: float, limit: int
) -> tuple[bytes, bytes]:
    deadline = time.monotonic() + timeout_s
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    size = 0
    view = memoryview(data)
    with selectors.DefaultSelector() as selector:
        if view:
            os.set_blocking(in_w, False)
            selector.register(in_w, selectors.EVENT_WRITE)
        else:
            open_fds.discard(in_w)
            os.close(in_w)
        selector.register(out_r, selectors.EVENT_READ)
        selector.register(err_r, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SpawnTimeout(f"no result within {timeout_s:g} s")
            for key, _ in selector.select(remaining):
                fd = key.fd
                if fd == in_w:
                    try:
                        view = view[os.write(in_w, view[:_READ_CHUNK]) :]
                    except BrokenPipeError:
                        view = view[:0]  # it stopped reading: its exit status will say why
                    if not view:
                        selector.unregister(in_w)
                        open_fds.discard(in_w)
                        os.close(in_w)
                    continue
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(fd)
                    continue
                size += len(chunk)
                if size > limit:
                    raise SpawnTimeout(f"output passed {limit} bytes")
                chunks[fd].append(chunk)
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
