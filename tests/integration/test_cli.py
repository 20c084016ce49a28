"""The `voxshift` CLI as a user runs it: real processes, real engines, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.server import ALL_ON_V2
from voxshift.audio import probe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env["VOXSHIFT_DATA_DIR"] = str(tmp_path_factory.mktemp("cli"))
    env["VOXSHIFT_WHISPER_MODEL_DIR"] = str(whisper_model_dir)
    env.update(ALL_ON_V2)  # these tests are about the v2 engine behind the CLI
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxshift.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=180,
    )


def assert_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["transcribe"], ["speak"], ["engines"], ["config"], ["models", "install"]]
)
def test_help_explains_each_command(cli_env: dict[str, str], command: list[str]) -> None:
    proc = run(cli_env, *command, "--help")
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout and len(proc.stdout.splitlines()) > 4


def test_speak_then_transcribe_round_trip(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "hello.ogg"
    proc = run(
        cli_env, "speak", "Good morning, the meeting starts at nine.", "-o", str(out), "--language", "en"
    )
    assert proc.returncode == 0, proc.stderr
    assert "piper" in proc.stdout
    container, duration = probe(out.read_bytes())
    assert container == "ogg" and duration > 1.0
    proc = run(cli_env, "transcribe", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider_used"] == "whisper"
    assert result["detected_language"] == "en"
    assert "meeting" in result["text"].lower()


def test_speak_russian_reads_stdin(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "ru.wav"
    proc = run(cli_env, "speak", "-", "-o", str(out), stdin="Доброе утро, друзья.")
    assert proc.returncode == 0, proc.stderr
    assert "rhvoice" in proc.stdout or "espeak" in proc.stdout  # espeak-ng without RHVoice
    assert probe(out.read_bytes())[1] > 0.5


def test_engines_reports_availability_and_reasons(cli_env: dict[str, str]) -> None:
    proc = run(cli_env, "engines", "--json")
    assert proc.returncode == 0, proc.stderr
    engines = {(e["kind"], e["name"]): e for e in json.loads(proc.stdout)}
    assert engines[("stt", "whisper")]["available"] is True
    assert engines[("tts", "piper")]["available"] is True
    assert "en" in engines[("tts", "piper")]["languages"]
    assert engines[("tts", "espeak")]["available"] is True
    assert "ru" in engines[("tts", "espeak")]["languages"]
    assert engines[("stt", "openai")]["available"] is False
    assert "VOXSHIFT_OPENAI_API_KEY" in engines[("stt", "openai")]["reason"]
    assert engines[("tts", "yandex")]["available"] is False
    table = run(cli_env, "engines")
    assert table.returncode == 0 and "why not" in table.stdout


def test_missing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert_usage_error(run(cli_env, "transcribe", str(tmp_path / "nope.ogg")), "no such file")


def test_directory_instead_of_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert_usage_error(run(cli_env, "transcribe", str(tmp_path)), "is a directory")


def test_empty_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    assert_usage_error(run(cli_env, "transcribe", str(empty)), "empty")


def test_random_bytes(cli_env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(os.urandom(2048))
    assert_usage_error(run(cli_env, "transcribe", str(junk)), "error:")


def test_oversize_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(2 * 1024 * 1024))
    env = cli_env | {"VOXSHIFT_MAX_UPLOAD_MB": "1"}
    assert_usage_error(run(env, "transcribe", str(big)), "MB")


def test_bad_language(cli_env: dict[str, str], tmp_path: Path) -> None:
    clip = tmp_path / "c.wav"
    assert run(cli_env, "speak", "hello", "-o", str(clip)).returncode == 0
    assert_usage_error(run(cli_env, "transcribe", str(clip), "--language", "12"), "language")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["speak", "", "-o", "x.wav"], "empty"),
        (["speak", "a" * 4097, "-o", "x.wav"], "4096"),
        (["speak", "hello", "-o", "x.ogg", "--format", "vorbis"], "vorbis"),
        (["speak", "hello", "-o", "x.wav", "--speed", "9"], "speed"),
        (["speak", "hello", "-o", "x.wav", "--voice", "nobody"], "voice"),
        (["speak", "hello"], "--output"),
        (["transcribe"], "Missing argument"),
    ],
)
def test_speak_bad_inputs(cli_env: dict[str, str], tmp_path: Path, args: list[str], needle: str) -> None:
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    assert_usage_error(run(cli_env, *args), needle)
    assert not list(tmp_path.glob("x.*")), "nothing is written on a bad request"


def test_unwritable_output(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert_usage_error(
        run(cli_env, "speak", "hello", "-o", str(tmp_path / "no" / "dir" / "x.wav")), "cannot write"
    )


def test_bad_environment_is_exit_2(cli_env: dict[str, str]) -> None:
    assert_usage_error(run(cli_env | {"VOICE_V2_ROLLOUT_PERCENTAGE": "150"}, "engines"), "0 to 100")
