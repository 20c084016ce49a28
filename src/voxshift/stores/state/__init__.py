"""The state store: Redis when ``VOXSHIFT_STATE_URL`` names one, else an embedded SQLite file.

``open_state_store(settings.resolved_state_url)`` gives the raw store (legacy keys, the data
migration); v2 code gets ``NamespacedStore(raw, settings.voice_v2_redis_namespace)``. Opening does
no I/O; call ``check_state_store`` (a ping) at start-up to fail fast on an unreachable server.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError
from voxshift.stores.state.base import Batch, Op, OpResult, StateStore, Subscription
from voxshift.stores.state.namespaced import NamespacedStore

__all__ = [
    "Batch",
    "NamespacedStore",
    "Op",
    "OpResult",
    "StateStore",
    "Subscription",
    "check_state_store",
    "open_state_store",
]

ENV_VAR = "VOXSHIFT_STATE_URL"
ALLOWED = (
    "sqlite:///relative/state.db, sqlite:////absolute/state.db, "
    "redis://[[user]:password@]host[:port][/db], rediss://... (TLS) or unix:///path/redis.sock[?db=N]"
)


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"invalid configuration: {ENV_VAR}={mask_url(url)!r}: {why}; expected {ALLOWED}")


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL, SQLAlchemy style: three slashes then the path, so an
    absolute path shows four (``sqlite:////var/lib/voxshift/state.db``)."""
    rest = url[len("sqlite://") :]
    if not rest.startswith("/"):
        raise _bad(url, "a sqlite URL has no host part (write sqlite:///path)")
    path = rest[1:]
    if not path:
        raise _bad(url, "no database file given")
    if "?" in path or "#" in path:
        raise _bad(url, "sqlite URLs take no query options")
    return path


def _check_redis(url: str, parts: SplitResult) -> None:
    try:
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise _bad(url, f"bad host or port ({exc})") from None
    if parts.scheme == "unix":
        if not parts.path or parts.path == "/":
            raise _bad(url, "no socket path given")
        return
    if not host:
        raise _bad(url, "no host given")
    if port == 0:
        raise _bad(url, "port must be 1-65535")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise _bad(url, f"the path must be a database number, got {db!r}")


def open_state_store(url: str, *, timeout_s: float = 2.0) -> StateStore:
    """A store for ``url``; ConfigError (one line, password masked) when the URL is unusable."""
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise _bad(url, "not a URL")
    scheme = scheme.lower()
    if scheme == "sqlite":
        from voxshift.stores.state.sqlite import SqliteStateStore

        path = sqlite_path(url)
        return SqliteStateStore(path if path == ":memory:" else Path(path).absolute())
    if scheme in ("redis", "rediss", "unix"):
        from voxshift.stores.state.redis import RedisStateStore

        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise _bad(url, str(exc)) from None
        _check_redis(url, parts)
        try:
            return RedisStateStore(url, timeout_s=timeout_s)
        except (ValueError, TypeError) as exc:  # redis-py's own URL and query-option checks
            raise _bad(url, str(exc)) from None
    raise _bad(url, f"unsupported scheme {scheme!r}")


async def check_state_store(store: StateStore) -> None:
    """Start-up check: StoreUnavailable (naming the masked URL) when the store cannot be used."""
    await store.ping()
