"""Running the `voxshift` CLI in tests the way an operator does, with exactly the environment given."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from voxshift.cli.main import app


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI in-process (typer's CliRunner, with exactly ``env`` as the environment), or as a real
    ``python -m voxshift.cli`` process when ``process`` is set; same result shape either way."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "voxshift.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            input=stdin if stdin is not None else "",
            timeout=120,
        )
    # Variables of this process that are not in ``env`` are hidden, so the test's env is all there is.
    hidden: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    result = CliRunner().invoke(app, list(args), env={**hidden, **env}, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # what would be a traceback for a user
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
