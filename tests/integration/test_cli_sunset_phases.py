"""`voxshift sunset plan | status | run PHASE` as an operator runs them: guards as exit 1 with every
reason, bad input as exit 2, a dry run that changes nothing, read_only through the flags."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.integration.cli_helpers import run


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "VOXSHIFT_DATA_DIR": str(tmp_path / "data"),
    }


def test_phases_from_the_cli(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    plan = run(env, "sunset", "plan", "--json")
    assert plan.returncode == 0, plan.stderr
    phases = {p["phase"]: p for p in json.loads(plan.stdout)}
    assert phases["read_only"]["refusals"] == [] and phases["data_migration"]["status"] == "not_started"

    refused = run(env, "sunset", "run", "data_migration", "-r", "too early")
    assert refused.returncode == 1
    assert "read_only has not completed" in refused.stderr and "no verified backup" in refused.stderr
    assert "Traceback" not in refused.stderr

    unknown = run(env, "sunset", "run", "everything", "-r", "x")
    assert unknown.returncode == 2 and "unknown phase 'everything'" in unknown.stderr
    no_reason = run(env, "sunset", "run", "read_only")
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr

    dry = run(env, "sunset", "run", "read_only", "--dry-run")
    assert dry.returncode == 0 and "read_only: would complete" in dry.stdout
    assert json.loads(run(env, "flags", "show", "--json").stdout)["legacy"]["read_only"] is False

    done = run(env, "sunset", "run", "read_only", "-r", "week 5")
    assert done.returncode == 0, done.stderr
    status = json.loads(run(env, "sunset", "status", "--json").stdout)
    assert status["phases"]["read_only"]["status"] == "completed" and status["legacy_read_only"] is True
    assert json.loads(run(env, "flags", "show", "--json").stdout)["legacy"]["read_only"] is True

    cleanup = run(env, "sunset", "run", "infrastructure_cleanup", "-r", "x")
    assert cleanup.returncode == 2 and "confirm with --yes" in cleanup.stderr
