"""`voxshift tokens create | list | revoke` on the embedded settings database of a tmp data dir:
the secret printed once and never again, names and roles checked (exit 2, one line), a duplicate
live name refused, revoke idempotent, an unknown name exit 2; a real process for the exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from tests.integration.cli_helpers import run

TOKEN = re.compile(r"vxs_[A-Za-z0-9_-]{43}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    return out


def one_error_line(stderr: str, *parts: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for part in parts:
        assert part in lines[0], stderr


def test_create_prints_the_secret_once_and_stores_only_its_hash(env: dict[str, str], tmp_path: Path) -> None:
    made = run(env, "tokens", "create", "ci-bot", "--role", "operator")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert TOKEN.fullmatch(secret)
    assert "shown only now" in made.stderr
    with sqlite3.connect(tmp_path / "data" / "voxshift.db") as conn:
        rows = conn.execute("SELECT name, role, token_hash, revoked_at FROM admin_tokens").fetchall()
    assert rows == [("ci-bot", "operator", hashlib.sha256(secret.encode()).hexdigest(), None)]
    assert secret.encode() not in (tmp_path / "data" / "voxshift.db").read_bytes()

    listed = run(env, "tokens", "list", "--json")
    assert secret not in listed.stdout
    (only,) = json.loads(listed.stdout)
    assert {k: only[k] for k in ("name", "role", "active", "revoked_at", "last_used_at")} == {
        "name": "ci-bot",
        "role": "operator",
        "active": True,
        "revoked_at": None,
        "last_used_at": None,
    }
    table = run(env, "tokens", "list").stdout
    assert "ci-bot" in table and "operator" in table and secret not in table

    as_json = json.loads(run(env, "tokens", "create", "dash", "--role", "viewer", "--json").stdout)
    assert TOKEN.fullmatch(as_json["token"]) and as_json["role"] == "viewer" and as_json["name"] == "dash"


def test_revoke_is_idempotent_and_frees_the_name(env: dict[str, str]) -> None:
    first = run(env, "tokens", "create", "alice", "--role", "operator").stdout.strip()
    duplicate = run(env, "tokens", "create", "alice", "--role", "viewer")
    assert duplicate.returncode == 2
    one_error_line(duplicate.stderr, "live token named 'alice' exists")

    revoked = run(env, "tokens", "revoke", "alice")
    assert revoked.returncode == 0 and "token 'alice' revoked" in revoked.stdout
    again = run(env, "tokens", "revoke", "alice")
    assert again.returncode == 0 and "was already revoked" in again.stdout

    second = run(env, "tokens", "create", "alice", "--role", "viewer").stdout.strip()
    assert TOKEN.fullmatch(second) and second != first
    rows = json.loads(run(env, "tokens", "list", "--json").stdout)
    assert [(r["name"], r["role"], r["active"]) for r in rows] == [
        ("alice", "operator", False),
        ("alice", "viewer", True),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "bad name", "--role", "viewer"), "token name must be 1-64 characters"),
        (("create", "x" * 65, "--role", "viewer"), "token name must be 1-64 characters"),
        (("create", "env", "--role", "viewer"), "reserved for VOXSHIFT_ADMIN_TOKEN"),
        (("create", "ok", "--role", "admin"), "role must be viewer or operator"),
        (("revoke", "never-issued"), "no token named 'never-issued'"),
        (("revoke", "a/b"), "token name must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    done = run(env, "tokens", *args)
    assert done.returncode == 2
    one_error_line(done.stderr, message)
    assert json.loads(run(env, "tokens", "list", "--json").stdout) == []


def test_a_real_process_exits_2_for_a_weak_or_shared_secret(env: dict[str, str]) -> None:
    done = run({**env, "VOXSHIFT_ADMIN_TOKEN": "hunter2-secret"}, "tokens", "list", process=True)
    assert done.returncode == 2
    one_error_line(done.stderr, "VOXSHIFT_ADMIN_TOKEN", "at least 16 characters")
    assert "hunter2" not in done.stderr  # a secret is never echoed, not even a bad one
    same = "one-secret-for-both-0123"
    done = run(
        {**env, "VOXSHIFT_ADMIN_TOKEN": same, "VOXSHIFT_VOICE_API_KEY": same}, "tokens", "list", process=True
    )
    assert done.returncode == 2
    one_error_line(done.stderr, "VOXSHIFT_ADMIN_TOKEN and VOXSHIFT_VOICE_API_KEY must differ")
    assert same not in done.stderr
    made = run(env, "tokens", "create", "bot", "--role", "viewer", process=True)
    assert made.returncode == 0 and TOKEN.fullmatch(made.stdout.strip())
