"""The CLI never reads more of a user's file or pipe than its limit + 1 byte (issue 9, "memory is bounded").

Real `python -m voxshift.cli` processes, as in test_cli.py. Each one's peak RSS comes from os.wait4,
and it runs under an address-space cap and a kill timer: without the bounds, `transcribe
/dev/zero` reads until the kernel kills it, and a test must not take the machine down with it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from voxshift.config import Settings

LIMIT_MB = 0.01
LIMIT_BYTES = Settings(max_upload_mb=LIMIT_MB).max_upload_bytes
ADDRESS_SPACE_CAP = 4 << 30
DEADLINE_S = 60.0


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    inherited_mb: float

    def assert_quick_and_small(self) -> None:
        """Done in seconds, and no more memory than the CLI's own imports: nothing big was read."""
        assert self.seconds < 30, self
        # Linux starts a child's ru_maxrss from the peak of the process it was forked from (kept
        # across exec), so only what the child added on top of that says anything about it.
        assert self.max_rss_mb < self.inherited_mb + 128, self


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    out["VOXSHIFT_MAX_UPLOAD_MB"] = str(LIMIT_MB)
    return out


def run(env: dict[str, str], *args: str, stdin: str = os.devnull) -> Finished:
    with (
        open(stdin, "rb") as given,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        inherited_mb = _own_peak_rss_mb()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxshift.cli", *args],
            env=env,
            stdin=given,
            stdout=out,
            stderr=err,
        )
        # Set from outside rather than in a preexec_fn, which is unsafe in a process with threads.
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
        killer = threading.Timer(DEADLINE_S, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # the rusage of exactly this child
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Finished(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            usage.ru_maxrss / 1024,  # kB on Linux
            inherited_mb,
        )


def _own_peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def one_usage_error(done: Finished, *needles: str) -> str:
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_transcribe_refuses_a_character_device_up_front(env: dict[str, str], device: str) -> None:
    done = run(env, "transcribe", device)
    one_usage_error(done, device, "is a character device, not a regular file")
    done.assert_quick_and_small()


def test_transcribe_refuses_a_directory(env: dict[str, str], tmp_path: Path) -> None:
    one_usage_error(run(env, "transcribe", str(tmp_path)), "is a directory, not a regular file")


def test_transcribe_refuses_one_byte_over_the_limit_with_the_apis_message(
    env: dict[str, str], tmp_path: Path
) -> None:
    at_limit = tmp_path / "at.wav"
    at_limit.write_bytes(b"RIFF" + os.urandom(LIMIT_BYTES - 4))
    over = tmp_path / "over.wav"
    over.write_bytes(at_limit.read_bytes() + b"\0")
    # VoiceV2Service.check_upload_size's wording: the HTTP API says exactly this.
    one_usage_error(run(env, "transcribe", str(over)), f"file is larger than the {LIMIT_MB:g} MB limit")
    done = run(env, "transcribe", str(at_limit))  # passes the size check; random bytes are not audio
    assert done.returncode == 2 and "larger than" not in done.stderr, done


def test_transcribe_reads_an_endless_pipe_only_up_to_the_limit(env: dict[str, str], tmp_path: Path) -> None:
    fifo = tmp_path / "endless.wav"
    os.mkfifo(fifo)
    written = 0

    def feed() -> None:
        nonlocal written
        block = bytes(64 * 1024)
        try:
            with open(fifo, "wb") as pipe:  # blocks until the CLI opens it
                while written < 1 << 30:
                    pipe.write(block)
                    written += len(block)
        except BrokenPipeError:  # the CLI stopped reading: what this test wants
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    done = run(env, "transcribe", str(fifo))
    feeder.join(10)
    one_usage_error(done, f"file is larger than the {LIMIT_MB:g} MB limit")
    # What the CLI read, plus what a pipe and the writer's buffer hold.
    assert written < LIMIT_BYTES + 1024 * 1024, written


def test_agents_set_refuses_a_device_and_bounds_stdin(env: dict[str, str]) -> None:
    one_usage_error(
        run(env, "agents", "set", "agent_1", "--file", "/dev/zero"),
        "--file /dev/zero is a character device, not a regular file",
    )
    done = run(env, "agents", "set", "agent_1", "--file", "-", stdin="/dev/zero")
    one_usage_error(done, "--file stdin: larger than the 1 MiB limit")
    done.assert_quick_and_small()


def test_agents_set_refuses_a_settings_file_over_1_mib(env: dict[str, str], tmp_path: Path) -> None:
    document = tmp_path / "settings.json"
    document.write_text('{"enabled": true, "pad": "' + "x" * (1024 * 1024) + '"}')
    one_usage_error(run(env, "agents", "set", "agent_1", "--file", str(document)), "larger than the 1 MiB")


def test_speak_reads_stdin_only_up_to_the_text_limit(env: dict[str, str], tmp_path: Path) -> None:
    done = run(env, "speak", "-", "-o", str(tmp_path / "out.wav"), stdin="/dev/zero")
    one_usage_error(done, "more than 4096 characters; the limit is 4096")
    done.assert_quick_and_small()
