"""Where a tool's ``audio`` argument comes from: bytes, a ``data:`` URI, an http(s) URL or a path.

A language model chooses this argument, so every source is bounded: at most the service's upload
limit is ever held (a URL is streamed and cut off one byte past it, a file is checked by its size
before it is read), downloads have a timeout and follow at most a few redirects, and any other URL
scheme (``file:``, ``ftp:``, ...) is refused rather than guessed at. Failures are typed voxshift
errors, so the tools can answer them as ``success: false`` with the error's code.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

from voxshift.errors import EmptyInput, InvalidRequest, NotFound, PayloadTooLarge

DOWNLOAD_TIMEOUT_S = 30.0
MAX_REDIRECTS = 3
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_MB = 1024 * 1024


class AudioUnreachable(InvalidRequest):
    """The audio URL could not be fetched (connection refused, timeout, DNS)."""

    code = "audio_unreachable"


@dataclass(frozen=True)
class AudioSource:
    data: bytes
    filename: str | None


@dataclass(frozen=True)
class SourceLimits:
    max_bytes: int
    timeout_s: float = DOWNLOAD_TIMEOUT_S
    # When set, local paths must lie inside one of these folders (resolved, symlinks followed).
    audio_dirs: tuple[Path, ...] | None = None

    @classmethod
    def of(
        cls, max_bytes: int, timeout_s: float, audio_dirs: Sequence[str | os.PathLike[str]] | None
    ) -> SourceLimits:
        dirs = None if audio_dirs is None else tuple(Path(d).resolve() for d in audio_dirs)
        return cls(max_bytes, timeout_s, dirs)


async def load_source(audio: bytes | str, limits: SourceLimits) -> AudioSource:
    """The bytes of ``audio`` and a file name when one is known; raises a voxshift error."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return AudioSource(_bounded(bytes(audio), limits), None)
    if not isinstance(audio, str) or not audio.strip():
        raise EmptyInput("audio is empty: give a URL, a data: URI or a file path", param="audio")
    text = audio.strip()
    scheme = _SCHEME.match(text)
    kind = scheme.group(1).lower() if scheme else ""
    if kind in ("http", "https"):
        return await _download(text, limits)
    if kind == "data":
        return AudioSource(_bounded(_data_uri(text), limits), None)
    if kind and len(kind) > 1:  # one letter is a Windows drive, not a scheme
        raise InvalidRequest(
            f"audio URL scheme {kind!r} is not supported; use http(s)://, data: or a file path",
            param="audio",
        )
    return _read_path(Path(text).expanduser(), limits)


def _bounded(data: bytes, limits: SourceLimits) -> bytes:
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(_too_large(limits), param="audio")
    if not data:
        raise EmptyInput("the audio is empty", param="audio")
    return data


def _too_large(limits: SourceLimits) -> str:
    return f"the audio is larger than the {limits.max_bytes / _MB:g} MB limit"


def _data_uri(uri: str) -> bytes:
    # data:[<media type>][;base64],<data>; audio is binary, so only the base64 form is accepted.
    header, sep, payload = uri[5:].partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise InvalidRequest("a data: URI must be data:<type>;base64,<data>", param="audio")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("the data: URI's base64 is malformed", param="audio") from None


async def _download(url: str, limits: SourceLimits) -> AudioSource:
    name = PurePosixPath(unquote(urlsplit(url).path)).name or None
    try:
        async with (
            httpx.AsyncClient(
                timeout=limits.timeout_s, follow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                error = NotFound if response.status_code in (404, 410) else InvalidRequest
                raise error(f"the audio URL answered HTTP {response.status_code}", param="audio")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise PayloadTooLarge(_too_large(limits), param="audio")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:  # the header may lie or be missing: count what arrives
                    raise PayloadTooLarge(_too_large(limits), param="audio")
                chunks.append(chunk)
    except httpx.TooManyRedirects:
        raise InvalidRequest(
            f"the audio URL redirects more than {MAX_REDIRECTS} times", param="audio"
        ) from None
    except httpx.InvalidURL:
        raise InvalidRequest("the audio URL is malformed", param="audio") from None
    except httpx.TimeoutException:
        raise AudioUnreachable(
            f"the audio URL did not answer within {limits.timeout_s:g} s", param="audio"
        ) from None
    except httpx.HTTPError as exc:
        raise AudioUnreachable(
            f"the audio URL could not be fetched ({type(exc).__name__})", param="audio"
        ) from None
    return AudioSource(_bounded(b"".join(chunks), limits), name)


def _read_path(path: Path, limits: SourceLimits) -> AudioSource:
    shown = str(path)
    try:
        resolved = path.resolve(strict=True)
        if limits.audio_dirs is not None and not any(resolved.is_relative_to(d) for d in limits.audio_dirs):
            raise InvalidRequest(f"{shown} is outside the folders audio may be read from", param="audio")
        with resolved.open("rb") as fh:
            # Checked on what was opened: a device (/dev/zero) or a pipe has no size to bound it by.
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidRequest(f"{shown} is not a regular file", param="audio")
            if info.st_size > limits.max_bytes:
                raise PayloadTooLarge(_too_large(limits), param="audio")
            data = fh.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise NotFound(f"{shown}: no such file", param="audio") from None
    except IsADirectoryError:
        raise InvalidRequest(f"{shown} is a directory, not a file", param="audio") from None
    except OSError as exc:
        raise InvalidRequest(f"{shown}: cannot read it ({exc.strerror or exc})", param="audio") from None
    return AudioSource(_bounded(data, limits), path.name)
