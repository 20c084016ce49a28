"""`voxshift db ...` and `voxshift agents ...` as an operator runs them: real processes against a tmp
SQLite file and a real PostgreSQL database; exit codes, one-line errors, nothing stored lost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.postgres_server import PASSWORD
from tests.fixtures.redis_server import free_port
from tests.integration.cli_helpers import run
from voxshift.stores.state import open_state_store

AGENT = "agent_агент:eu@acme.io_9f8e7d6c"
PROVIDER = {"provider": "openai", "tts_config": {"model": "tts-1", "voice": "alloy"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    if backend == "postgresql":
        out["VOXSHIFT_DATABASE_URL"] = str(request.getfixturevalue("postgres_url"))
    return out


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def show(env: dict[str, str], agent: str = AGENT) -> dict[str, object]:
    record = json.loads(ok(run(env, "agents", "show", agent)))
    assert isinstance(record, dict)
    return record


def upgraded(env: dict[str, str]) -> dict[str, str]:
    ok(run(env, "db", "upgrade"))
    return env


def test_db_current_and_upgrade_as_real_processes(env: dict[str, str], backend: str) -> None:
    out = ok(run(env, "db", "current", process=True))
    assert "none (empty database)" in out and "run `voxshift db upgrade`" in out
    assert run(env, "db", "current", "--check", process=True).returncode == 1
    out = ok(run(env, "db", "upgrade", process=True))
    assert "upgraded none (empty) -> 0004_rollout_transition" in out
    assert "already at 0004_rollout_transition (head)" in ok(run(env, "db", "upgrade", process=True))
    out = ok(run(env, "db", "current", "--check", process=True))
    assert out.startswith("0004_rollout_transition (head) in ")
    assert PASSWORD not in out
    if backend == "postgresql":
        assert "postgres:****@127.0.0.1" in out


def test_agents_refuse_an_old_postgresql_schema_and_upgrade_sqlite(env: dict[str, str], backend: str) -> None:
    proc = run(env, "agents", "list")
    if backend == "postgresql":
        one_line_error(
            proc, 2, "at revision none (empty)", "needs 0004_rollout_transition", "run `voxshift db upgrade`"
        )
        assert PASSWORD not in proc.stderr
    else:
        ok(proc)
        assert "0004_rollout_transition (head)" in ok(run(env, "db", "current"))


def test_agents_set_show_list_delete(env: dict[str, str], tmp_path: Path) -> None:
    upgraded(env)
    document = tmp_path / "settings.json"
    document.write_text(json.dumps({"enabled": True, "providers": [PROVIDER]}, ensure_ascii=False))
    assert "created voice settings" in ok(run(env, "agents", "set", AGENT, "--file", str(document)))
    record = show(env)
    assert record["agent_id"] == AGENT and record["version"] == 1
    settings = record["settings"]
    assert isinstance(settings, dict) and settings["cache_ttl_hours"] == 24  # defaults filled in

    out = ok(
        run(
            env,
            "agents",
            "set",
            AGENT,
            "--set",
            "providers[0].tts_config.speed=1.25",
            "-s",
            "providers[0].tts_config.voice=nova",
            "--set",
            'intent_keywords=["скажи"]',
            "--actor",
            "alice",
        )
    )
    assert "version 2" in out
    record = show(env)
    settings = record["settings"]
    assert isinstance(settings, dict) and record["updated_by"] == "alice"
    assert settings["providers"][0]["tts_config"]["speed"] == 1.25
    assert settings["providers"][0]["tts_config"]["voice"] == "nova"
    assert settings["intent_keywords"] == ["скажи"]

    piped = json.dumps({"providers": [{"provider": "whisper", "stt_config": {"model": "whisper-base"}}]})
    ok(run(env, "agents", "set", "agent_b", "--file", "-", stdin=piped))
    table = ok(run(env, "agents", "list"))
    assert AGENT in table and "agent_b" in table and "whisper" in table
    listed = json.loads(ok(run(env, "agents", "list", "--json")))
    assert [r["agent_id"] for r in listed] == sorted([AGENT, "agent_b"])

    assert "dry run: would delete" in ok(run(env, "agents", "delete", AGENT, "--dry-run"))
    one_line_error(run(env, "agents", "delete", AGENT), 2, "without --yes")
    assert show(env)["version"] == 2  # neither deleted anything
    assert "deleted voice settings" in ok(run(env, "agents", "delete", AGENT, "--yes"))
    one_line_error(run(env, "agents", "show", AGENT), 2, "has no voice settings")
    one_line_error(run(env, "agents", "delete", AGENT, "--yes"), 2, "has no voice settings")


@pytest.mark.parametrize(
    ("args", "stdin", "needles"),
    [
        (
            ["--set", "providers[0].tts_config.speed=9"],
            None,
            ["providers[0].tts_config.speed: must be between 0.25 and 4.0, got 9"],
        ),
        (["--set", "cache_ttl_hour=5"], None, ["cache_ttl_hour: unknown field"]),
        (["--set", "enabled=maybe"], None, ['enabled: must be true or false, got "maybe"']),
        (["--set", "providers[3].priority=1"], None, ["providers[3]: index out of range"]),
        (["--set", "enabled"], None, ["expected FIELD.PATH=VALUE"]),
        (
            ["--file", "-"],
            '{"enabled": true, "providers": [{"provider": "azure"}]}',
            ["providers[0].provider"],
        ),
        (["--file", "-"], '{"enabled": tru', ["not valid JSON (line 1"]),
        (["--file", "-"], "[1, 2]", ["expected a JSON object"]),
        (["--file", "/nonexistent/s.json"], None, ["no such file"]),
        ([], None, ["nothing to set"]),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_and_keeps_what_was_stored(
    env: dict[str, str], args: list[str], stdin: str | None, needles: list[str]
) -> None:
    upgraded(env)
    ok(
        run(
            env,
            "agents",
            "set",
            AGENT,
            "--set",
            "enabled=true",
            "--set",
            f"providers[0]={json.dumps(PROVIDER)}",
        )
    )
    before = show(env)
    one_line_error(run(env, "agents", "set", AGENT, *args, stdin=stdin), 2, *needles)
    assert show(env) == before


def test_a_real_process_rejects_a_bad_field_with_one_line(env: dict[str, str]) -> None:
    upgraded(env)
    ok(run(env, "agents", "set", AGENT, "--set", "enabled=true", process=True))
    proc = run(env, "agents", "set", AGENT, "--set", "max_file_size_mb=500", process=True)
    one_line_error(proc, 2, "max_file_size_mb: must be between 1 and 100, got 500")
    assert proc.stdout == ""
    record = json.loads(ok(run(env, "agents", "show", AGENT, process=True)))
    assert record["version"] == 1 and record["settings"]["max_file_size_mb"] == 25


def test_bad_agent_ids_and_stale_versions(env: dict[str, str]) -> None:
    upgraded(env)
    one_line_error(run(env, "agents", "show", "x" * 129), 2, "at most 128 characters")
    ok(run(env, "agents", "set", AGENT, "--set", "enabled=true"))
    ok(run(env, "agents", "set", AGENT, "--set", "enabled=false"))
    one_line_error(
        run(env, "agents", "set", AGENT, "--set", "enabled=true", "--expected-version", "1"),
        1,
        "is at version 2, not 1",
    )
    one_line_error(
        run(env, "agents", "set", AGENT, "-s", "enabled=true", "--expected-version", "0"),
        1,
        "already has settings",
    )
    assert show(env)["version"] == 2


@pytest.mark.parametrize(
    ("agent_id", "needle"),
    [
        (" ", "agent_id must not be blank, got ' '"),
        ("\t \n", "must not be blank"),
        ("x" * 129, "agent_id must be at most 128 characters, got 129"),
    ],
)
@pytest.mark.parametrize(
    "command", [["set", "{}", "--set", "enabled=true"], ["show", "{}"], ["delete", "{}", "--yes"]]
)
def test_blank_or_overlong_agent_ids_exit_2_and_store_nothing(
    env: dict[str, str], command: list[str], agent_id: str, needle: str
) -> None:
    upgraded(env)
    args = [agent_id if arg == "{}" else arg for arg in command]
    one_line_error(run(env, "agents", *args), 2, needle)
    assert json.loads(ok(run(env, "agents", "list", "--json"))) == []


def test_a_real_process_refuses_a_blank_agent_id(env: dict[str, str]) -> None:
    upgraded(env)
    proc = run(env, "agents", "set", " ", "--set", "enabled=true", process=True)
    one_line_error(proc, 2, "agent_id must not be blank")
    assert proc.stdout == ""
    assert json.loads(ok(run(env, "agents", "list", "--json", process=True))) == []


def test_writes_refresh_the_cache_running_servers_read(env: dict[str, str], tmp_path: Path) -> None:
    upgraded(env)
    ok(run(env, "agents", "set", AGENT, "--set", "enabled=true"))
    ok(run(env, "agents", "set", AGENT, "--set", "rate_limit_per_minute=50"))

    async def cached() -> bytes | None:
        store = open_state_store(f"sqlite:///{tmp_path / 'data' / 'state.db'}")
        try:
            return await store.get(f"voice_v2:settings:agent:{AGENT}")
        finally:
            await store.aclose()

    entry = asyncio.run(cached())
    assert entry is not None
    assert json.loads(entry)["version"] == 2
    assert json.loads(entry)["settings"]["rate_limit_per_minute"] == 50


def test_a_cache_outage_warns_but_the_write_lands(env: dict[str, str]) -> None:
    upgraded(env)
    env = {**env, "VOXSHIFT_STATE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = run(env, "agents", "set", AGENT, "--set", "enabled=true", process=True)
    assert proc.returncode == 0, proc.stderr
    warning = proc.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: the settings cache could not be refreshed")
    assert "3600 s" in warning[0]
    assert show(env)["version"] == 1


@pytest.mark.parametrize("backend", ["sqlite"])  # about settings, not the database
def test_config_file_and_environment_choose_the_database(env: dict[str, str], tmp_path: Path) -> None:
    from_file = tmp_path / "from-file.db"
    config = tmp_path / "voxshift.toml"
    config.write_text(f'database_url = "sqlite+aiosqlite:///{from_file}"\n')
    assert str(from_file) in ok(run(env, "--config", str(config), "db", "upgrade"))
    assert from_file.exists()
    from_env = tmp_path / "from-env.db"
    env = {**env, "VOXSHIFT_DATABASE_URL": f"sqlite:///{from_env}"}  # the environment wins over the file
    ok(run(env, "--config", str(config), "agents", "set", AGENT, "--set", "enabled=true"))
    assert from_env.exists()
    assert show({**env, "VOXSHIFT_DATABASE_URL": f"sqlite:///{from_env}"})["version"] == 1
    without_env = {k: v for k, v in env.items() if k != "VOXSHIFT_DATABASE_URL"}
    one_line_error(
        run(without_env, "--config", str(config), "agents", "show", AGENT), 2, "has no voice settings"
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bad_and_unreachable_database_urls(env: dict[str, str]) -> None:
    bad = {**env, "VOXSHIFT_DATABASE_URL": "mysql://u:topsecret@h/db"}
    line = one_line_error(
        run(bad, "db", "current"), 2, "VOXSHIFT_DATABASE_URL", "unsupported database 'mysql'"
    )
    assert "topsecret" not in line
    closed = {**env, "VOXSHIFT_DATABASE_URL": f"postgresql://u:topsecret@127.0.0.1:{free_port()}/db"}
    for args in (["db", "upgrade"], ["agents", "list"]):
        line = one_line_error(run(closed, *args), 1, "cannot reach the database", "u:****@127.0.0.1")
        assert "topsecret" not in line
