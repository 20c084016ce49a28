"""Shared CLI plumbing: lazily loaded settings and services, one-line errors, plain tables, bounded reads."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TypeVar

import typer

from voxshift.config import Settings, load_settings
from voxshift.errors import InvalidRequest, VoxshiftError

T = TypeVar("T")


@dataclass
class State:
    config_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None or overrides:
            try:
                self._settings = load_settings(self.config_file, **overrides)
            except VoxshiftError as exc:
                fail(exc)
        return self._settings

    def engines(self) -> Any:
        from voxshift.services.wiring.engines import build_engines

        try:
            return build_engines(self.settings())
        except VoxshiftError as exc:
            fail(exc)

    def voice_service(self) -> Any:
        from voxshift.services.voice.service import VoiceV2Service

        return VoiceV2Service(self.engines())


def fail(exc: VoxshiftError) -> NoReturn:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(exc.exit_code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; a VoxshiftError becomes one line on stderr and its exit code."""
    try:
        return asyncio.run(coro)
    except VoxshiftError as exc:
        fail(exc)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(s.rstrip() for s in out)


def read_bounded(source: Path | BinaryIO, max_bytes: int, what: str) -> bytes:
    """At most ``max_bytes`` of a regular file, a FIFO or an open stream (stdin), never more.

    Like the API's ``UploadFile.read(limit + 1)``: callers pass their limit + 1 and refuse a result
    longer than the limit with their own message. A path that could not be bounded by its size alone
    and is not a pipe either (a directory, a character or block device such as /dev/zero, a socket)
    is refused before it is opened: opening some devices has side effects. ``what`` starts every
    message (e.g. the path, or "--file x.json"); failures raise InvalidRequest (exit code 2).
    """
    if not isinstance(source, Path):
        return _read_upto(source, max_bytes)
    try:
        _require_readable_kind(source.stat().st_mode, what)
        with source.open("rb") as fh:
            # Again on what was opened: the path may have been replaced since it was looked at.
            _require_readable_kind(os.fstat(fh.fileno()).st_mode, what)
            return _read_upto(fh, max_bytes)
    except FileNotFoundError:
        raise InvalidRequest(f"{what}: no such file") from None
    except OSError as exc:
        raise InvalidRequest(f"{what}: cannot read it ({exc.strerror or exc})") from None


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _require_readable_kind(mode: int, what: str) -> None:
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):  # a pipe ends or is cut off at max_bytes
        return
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    raise InvalidRequest(f"{what} is {kind}, not a regular file")


def _read_upto(stream: BinaryIO, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    remaining = max_bytes
    while remaining > 0:
        chunk = stream.read(remaining)  # a pipe may hand over less than asked; a file all of it at once
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
