"""`voxshift flags ...` as an operator runs it, on a tmp data dir (embedded SQLite state store and
settings database): output, audit history, exit 2 with one `error:` line for bad input (and nothing
stored), and the degraded cases (state store or database unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.redis_server import free_port
from tests.integration.cli_helpers import run
from voxshift.core.flags import bucket

USER = next(f"user-{i}" for i in range(1000) if bucket(f"user-{i}") < 30)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    return out


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def usage_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0]


def show(env: dict[str, str]) -> dict[str, object]:
    data: dict[str, object] = json.loads(ok(run(env, "flags", "show", "--json")))
    return data


def history(env: dict[str, str]) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(ok(run(env, "flags", "history", "--json")))
    return data


def test_show_before_anything_is_stored_reads_the_environment_and_writes_nothing(env: dict[str, str]) -> None:
    env |= {"VOICE_V2_ENABLED": "true", "VOICE_V2_ROLLOUT_PERCENTAGE": "15"}
    table = ok(run(env, "flags", "show"))
    assert "0 (not stored yet: from VOICE_V2_*)" in table and "15%" in table
    data = show(env)
    assert (data["version"], data["enabled"], data["source"]) == (0, True, "environment")
    assert data["percentages"] == {"stt": 15, "tts": 15}
    proc = run(env, "flags", "history")
    assert proc.returncode == 0 and "no flag changes recorded" in proc.stderr


def test_set_show_explain_and_history(env: dict[str, str]) -> None:
    out = ok(
        run(
            env,
            *("flags", "set", "--enabled", "--percentage", "10", "--stt-percentage", "40"),
            *("--feature", "stt=true", "--feature", "langgraph_integration=on"),
            *("--reason", "phase 1", "--actor", "alice"),
        )
    )
    assert "flags now at version 1" in out
    assert "  percentages.stt: 0 -> 40" in out and "  percentages.tts: 0 -> 10" in out
    data = show(env)
    assert data["percentages"] == {"stt": 40, "tts": 10} and data["source"] == "state store"
    assert data["features"] == {
        "stt_enabled": True,
        "tts_enabled": False,
        "langgraph_integration": True,
        "caching_enabled": False,
    }
    explained = ok(run(env, "flags", "explain", USER))
    assert "flag config version 1" in explained
    assert (
        f"stt: v2 (in_cohort): user {USER!r} is in bucket {bucket(USER)}, below the 40% rollout" in explained
    )
    assert "tts: legacy (feature_disabled)" in explained and "rollout 10%" in explained
    as_json = json.loads(ok(run(env, "flags", "explain", USER, "--agent", "agent_1", "--json")))
    assert as_json["decisions"]["stt"] == {
        "system": "voice_v2",
        "reason": "in_cohort",
        "bucket": bucket(USER),
        "percentage": 40,
    }
    ok(run(env, "flags", "set", "--anonymous", "bucket", "--feature", "tts=true", "--reason", "seed parity"))
    assert "stt: " in ok(run(env, "flags", "explain", ""))  # anonymous: hashed like the seed's "None"
    (latest, first) = history(env)
    assert (first["actor"], first["reason"]) == ("alice", "phase 1")
    assert latest["changes"] == ["features.tts_enabled: false -> true", 'anonymous: "legacy" -> "bucket"']
    assert str(latest["actor"]).startswith("cli")
    table = ok(run(env, "flags", "history", "--limit", "1"))
    assert "seed parity" in table and "phase 1" not in table


def test_kill_is_immediate_idempotent_and_has_a_dry_run(env: dict[str, str]) -> None:
    ok(run(env, "flags", "set", "--enabled", "--percentage", "50", "--feature", "stt=true", "--reason", "go"))
    dry = ok(run(env, "flags", "kill", "--dry-run"))
    assert "dry run: would disable voice v2" in dry
    assert show(env)["enabled"] is True and len(history(env)) == 1
    assert "disabled (kill switch) at version 2" in ok(run(env, "flags", "kill", "--reason", "incident 12"))
    assert show(env)["enabled"] is False
    assert "already disabled" in ok(run(env, "flags", "kill", "--reason", "again"))
    assert [h["reason"] for h in history(env)] == ["incident 12", "go"]
    assert "kill_switch" in ok(run(env, "flags", "explain", USER))


def test_allow_and_deny_lists(env: dict[str, str]) -> None:
    ok(run(env, "flags", "set", "--enabled", "--feature", "stt=true", "--reason", "on at 0%"))
    assert 'allow.users: [] -> ["vip"]' in ok(run(env, "flags", "allow", "vip"))
    ok(run(env, "flags", "allow", "--agent", "agent_beta", "--reason", "beta agent"))
    assert "stt: v2 (user_allowed)" in ok(run(env, "flags", "explain", "vip"))
    assert "stt: v2 (agent_allowed)" in ok(run(env, "flags", "explain", "someone", "--agent", "agent_beta"))
    ok(run(env, "flags", "deny", "vip", "--reason", "complaint"))
    data = show(env)
    assert data["allow"] == {"users": [], "agents": ["agent_beta"]}
    assert data["deny"] == {"users": ["vip"], "agents": []}
    ok(run(env, "flags", "deny", "vip", "--remove"))
    assert "no change" in ok(run(env, "flags", "deny", "vip", "--remove"))
    assert history(env)[0]["reason"] == "remove user 'vip' from the deny list"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ("set", "--percentage", "150", "--reason", "x"),
            "--percentage: must be an integer from 0 to 100, got '150'",
        ),
        (("set", "--percentage", "abc", "--reason", "x"), "--percentage: must be an integer from 0 to 100"),
        (("set", "--percentage", "-5", "--reason", "x"), "got '-5'"),
        (("set", "--stt-percentage", "101", "--reason", "x"), "--stt-percentage: must be"),
        (("set", "--tts-percentage", "1.5", "--reason", "x"), "--tts-percentage: must be"),
        (("set", "--feature", "asr=true", "--reason", "x"), "unknown feature 'asr'"),
        (("set", "--feature", "stt=maybe", "--reason", "x"), "expected NAME=true|false"),
        (("set", "--feature", "stt", "--reason", "x"), "expected NAME=true|false"),
        (("set", "--anonymous", "random", "--reason", "x"), "--anonymous: must be legacy, v2 or bucket"),
        (("set", "--percentage", "10"), "--reason is required"),
        (("set", "--reason", "x"), "nothing to set"),
        (("kill",), "--reason is required"),
        (("kill", "--reason", "  "), "--reason is required"),
        (("allow",), "give exactly one of USER or --agent ID"),
        (("allow", "u", "--agent", "a"), "give exactly one"),
        (("deny", " "), "ids must be non-blank"),
        (("deny", "x" * 256), "at most 255"),
        (("history", "--limit", "0"), "--limit: must be an integer from 1 to 10000"),
        (("history", "--limit", "many"), "--limit"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    env: dict[str, str], args: tuple[str, ...], fragment: str
) -> None:
    ok(run(env, "flags", "set", "--enabled", "--reason", "baseline"))
    usage_error(run(env, "flags", *args), fragment)
    assert show(env)["version"] == 1 and len(history(env)) == 1


def test_bad_configuration_exits_2_as_a_real_process(env: dict[str, str]) -> None:
    proc = run(env | {"VOXSHIFT_STATE_URL": "ftp://nowhere"}, "flags", "show", process=True)
    usage_error(proc, "VOXSHIFT_STATE_URL")
    proc = run(env | {"VOICE_V2_ROLLOUT_PERCENTAGE": "150"}, "flags", "show", process=True)
    usage_error(proc, "VOICE_V2_ROLLOUT_PERCENTAGE")
    usage_error(
        run(env, "flags", "set", "--percentage", "150", "--reason", "x", process=True), "--percentage"
    )


def test_env_disagreement_is_noted_when_voice_v2_variables_are_set(env: dict[str, str]) -> None:
    ok(run(env, "flags", "set", "--percentage", "30", "--reason", "ramp"))
    assert run(env, "flags", "show").stderr == ""  # nothing set in the environment: nothing to note
    proc = run(env | {"VOICE_V2_ROLLOUT_PERCENTAGE": "5"}, "flags", "show")
    assert proc.returncode == 0
    assert (
        "note: the VOICE_V2_* environment differs" in proc.stderr
        and "percentages.stt: 5 -> 30" in proc.stderr
    )


def test_state_store_down_a_change_goes_to_the_database(env: dict[str, str]) -> None:
    ok(run(env, "flags", "set", "--enabled", "--reason", "on"))
    down = env | {"VOXSHIFT_STATE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = run(down, "flags", "kill", "--reason", "redis is down")
    assert proc.returncode == 0 and "disabled (kill switch)" in proc.stdout
    assert "warning: the state store is down" in proc.stderr
    assert history(env)[0]["reason"] == "redis is down"  # audited
    data = json.loads(ok(run(down, "flags", "show", "--json")))
    assert (data["enabled"], data["source"]) == (False, "database")


def test_database_down_allows_only_a_rollback(env: dict[str, str]) -> None:
    ok(run(env, "flags", "set", "--enabled", "--percentage", "40", "--reason", "on"))
    down = env | {"VOXSHIFT_DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/voxshift"}
    proc = run(down, "flags", "set", "--percentage", "60", "--reason", "more")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith(
        "error: the settings database is unavailable: only a rollback"
    )
    proc = run(down, "flags", "set", "--percentage", "20", "--reason", "less")
    assert proc.returncode == 0 and "percentages.stt: 40 -> 20" in proc.stdout
    assert "this change has no audit row" in proc.stderr
    assert show(env)["percentages"] == {"stt": 20, "tts": 20}
