"""The tools' audio sources: data: URIs, paths and http(s) URLs, each bounded, other schemes refused.

URLs are fetched from a real local HTTP server (a thread in this process), never mocked.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.server import free_port
from voxshift.errors import EmptyInput, InvalidRequest, NotFound, PayloadTooLarge
from voxshift.langgraph.sources import AudioUnreachable, SourceLimits, load_source

LIMIT = 1000
LIMITS = SourceLimits(max_bytes=LIMIT, timeout_s=5.0)
AUDIO = b"RIFF" + bytes(range(256)) * 2


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/note.wav":
            self._send(200, AUDIO, length=True)
        elif self.path == "/big-declared":
            self._send(200, b"x" * (LIMIT + 1), length=True)
        elif self.path == "/big-chunked":
            # No Content-Length: the size is only known by counting what arrives.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(4):
                chunk = b"y" * 400
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/note.wav")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/broken":
            self._send(500, b"oops", length=True)
        else:
            self._send(404, b"not here", length=True)

    def _send(self, status: int, body: bytes, *, length: bool) -> None:
        self.send_response(status)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_bytes_are_taken_as_they_are() -> None:
    source = await load_source(AUDIO, LIMITS)
    assert (source.data, source.filename) == (AUDIO, None)


async def test_a_base64_data_uri_is_decoded() -> None:
    uri = "data:audio/wav;base64," + base64.b64encode(AUDIO).decode()
    assert (await load_source(uri, LIMITS)).data == AUDIO


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("data:audio/wav;base64,@@@not-base64@@@", "base64 is malformed"),
        ("data:audio/wav,plain-text", "data:<type>;base64,<data>"),
        ("data:audio/wav;base64", "data:<type>;base64,<data>"),
    ],
)
async def test_a_bad_data_uri_is_invalid_input(uri: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        await load_source(uri, LIMITS)
    assert caught.value.code == "invalid_request" and caught.value.param == "audio"


async def test_a_data_uri_over_the_limit_is_too_large() -> None:
    uri = "data:audio/wav;base64," + base64.b64encode(b"z" * (LIMIT + 1)).decode()
    with pytest.raises(PayloadTooLarge):
        await load_source(uri, LIMITS)


async def test_a_local_file_is_read_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "note.ogg"
    path.write_bytes(AUDIO)
    source = await load_source(str(path), LIMITS)
    assert (source.data, source.filename) == (AUDIO, "note.ogg")


async def test_missing_file_directory_device_and_oversized_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file") as missing:
        await load_source(str(tmp_path / "nope.ogg"), LIMITS)
    assert missing.value.code == "not_found"
    with pytest.raises(InvalidRequest, match="directory"):
        await load_source(str(tmp_path), LIMITS)
    with pytest.raises(InvalidRequest, match="not a regular file"):
        await load_source("/dev/zero", LIMITS)
    big = tmp_path / "big.wav"
    big.write_bytes(b"b" * (LIMIT + 1))
    with pytest.raises(PayloadTooLarge) as large:
        await load_source(str(big), LIMITS)
    assert large.value.code == "file_too_large"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyInput):
        await load_source(str(empty), LIMITS)


async def test_audio_dirs_confine_local_paths(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inbox", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.wav").write_bytes(AUDIO)
    (outside / "b.wav").write_bytes(AUDIO)
    (inside / "link.wav").symlink_to(outside / "b.wav")
    limits = SourceLimits.of(LIMIT, 5.0, [inside])
    assert (await load_source(str(inside / "a.wav"), limits)).data == AUDIO
    for path in (outside / "b.wav", inside / "link.wav", inside / ".." / "private" / "b.wav"):
        with pytest.raises(InvalidRequest, match="outside the folders"):
            await load_source(str(path), limits)


@pytest.mark.parametrize(
    "audio", ["file:///etc/passwd", "ftp://example.com/a.wav", "gopher://x/", "s3://b/k"]
)
async def test_other_url_schemes_are_refused(audio: str) -> None:
    with pytest.raises(InvalidRequest, match="scheme"):
        await load_source(audio, LIMITS)


@pytest.mark.parametrize("audio", ["", "   "])
async def test_empty_audio_is_refused(audio: str) -> None:
    with pytest.raises(EmptyInput):
        await load_source(audio, LIMITS)


async def test_an_http_url_is_downloaded_with_its_name(http_url: str) -> None:
    source = await load_source(f"{http_url}/note.wav", LIMITS)
    assert (source.data, source.filename) == (AUDIO, "note.wav")
    assert (await load_source(f"{http_url}/moved", LIMITS)).data == AUDIO


async def test_http_errors_are_typed(http_url: str) -> None:
    with pytest.raises(NotFound, match="HTTP 404"):
        await load_source(f"{http_url}/missing.wav", LIMITS)
    with pytest.raises(InvalidRequest, match="HTTP 500"):
        await load_source(f"{http_url}/broken", LIMITS)


@pytest.mark.parametrize("path", ["/big-declared", "/big-chunked"])
async def test_downloads_stop_at_the_limit(http_url: str, path: str) -> None:
    with pytest.raises(PayloadTooLarge, match="limit"):
        await load_source(http_url + path, LIMITS)


async def test_an_unreachable_url_is_audio_unreachable() -> None:
    with pytest.raises(AudioUnreachable) as caught:
        await load_source(f"http://127.0.0.1:{free_port()}/note.wav", LIMITS)
    assert caught.value.code == "audio_unreachable"
