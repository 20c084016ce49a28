"""Pure helpers of the state store: SCAN pattern escaping, prefix ranges, TTLs, Redis-compatible
number formats, namespacing and URL parsing. No server and no file is touched here."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxshift.errors import ConfigError
from voxshift.stores.state import Batch, NamespacedStore, open_state_store
from voxshift.stores.state.base import decode_key, encode_key, format_float, parse_int, ttl_ms
from voxshift.stores.state.redis import RedisStateStore, escape_glob
from voxshift.stores.state.sqlite import SqliteStateStore
from voxshift.stores.state.sqlite_ops import prefix_end


@pytest.mark.parametrize(
    ("prefix", "escaped"),
    [
        (b"stt_cache:", b"stt_cache:"),
        (b"a*b?c[d]", b"a\\*b\\?c\\[d\\]"),
        (b"back\\slash", b"back\\\\slash"),
        ("агент@x.io:".encode(), "агент@x.io:".encode()),
    ],
)
def test_escape_glob(prefix: bytes, escaped: bytes) -> None:
    assert escape_glob(prefix) == escaped


@pytest.mark.parametrize(
    ("prefix", "end"),
    [(b"", None), (b"ab", b"ac"), (b"a\xff", b"b"), (b"\xff\xff", None), (b"k:", b"k;")],
)
def test_prefix_end_bounds_every_key_with_the_prefix(prefix: bytes, end: bytes | None) -> None:
    assert prefix_end(prefix) == end
    if end is not None:
        assert prefix + b"\xff" * 8 < end


def test_ttls_are_milliseconds_and_positive() -> None:
    assert ttl_ms(1) == 1000
    assert ttl_ms(0.2) == 200
    assert ttl_ms(0.0001) == 1
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            ttl_ms(bad)


def test_numbers_follow_redis_formats() -> None:
    assert format_float(3.0) == b"3"
    assert format_float(-0.5) == b"-0.5"
    assert format_float(1.25) == b"1.25"
    assert parse_int(b"-42") == -42
    for bad in (b"01", b"+1", b" 1", b"1.0", b"", b"9223372036854775808"):
        with pytest.raises(ValueError):
            parse_int(bad)


def test_keys_round_trip_even_when_not_utf8() -> None:
    raw = b"stt_cache:\xff\xfe"
    assert encode_key(decode_key(raw)) == raw
    assert encode_key("агент") == "агент".encode()


def test_namespaced_keys_and_batches(tmp_path: Path) -> None:
    view = NamespacedStore(SqliteStateStore(tmp_path / "s.db"), "voice_v2:")
    assert view.key("stt_cache:x") == "voice_v2:stt_cache:x"
    assert view.unkey("voice_v2:stt_cache:x") == "stt_cache:x"
    with pytest.raises(ValueError):
        view.unkey("stt_cache:x")
    mapped = view.map_ops(Batch().get("a").hincr("h", "f", 2, ttl_s=5))
    assert [(op.name, op.key, op.field, op.amount, op.ttl_s) for op in mapped] == [
        ("get", "voice_v2:a", None, 1, None),
        ("hincr", "voice_v2:h", "f", 2, 5),
    ]
    for bad in ("", "a:b", "with space"):
        with pytest.raises(ValueError):
            NamespacedStore(view.inner, bad)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:6379",
        "http://localhost:6379",
        "postgres://u:p@h/db",
        "redis://",
        "redis://:secret@",
        "redis://host:notaport/0",
        "redis://host:99999/0",
        "redis://host/abc",
        "rediss://host/0?socket_timeout=soon",
        "unix://",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/state.db",
        "sqlite:///state.db?mode=ro",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_state_store(url)
    message = str(info.value)
    assert "VOXSHIFT_STATE_URL" in message and "expected sqlite://" in message
    assert "\n" not in message and "secret" not in message
    assert info.value.exit_code == 2


def test_good_urls_open_without_io(tmp_path: Path) -> None:
    relative = open_state_store("sqlite:///relative/state.db")
    assert isinstance(relative, SqliteStateStore) and relative.path == str(Path.cwd() / "relative/state.db")
    absolute = open_state_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(absolute, SqliteStateStore) and absolute.path == str(tmp_path / "a.db")
    assert not (tmp_path / "a.db").exists()
    for url in (
        "redis://h:1/0",
        "redis://:pw@h:2/3",
        "redis://user:pw@h",
        "rediss://h:6380",
        "unix:///s.sock",
    ):
        assert "pw" not in open_state_store(url).url


def test_tls_urls_use_tls() -> None:
    store = open_state_store("rediss://:pw@cache.example:6380/1")
    assert isinstance(store, RedisStateStore)
    assert "SSL" in store._pool.connection_class.__name__
    assert store.url == "rediss://:****@cache.example:6380/1"
