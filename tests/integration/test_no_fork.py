"""No request forks the server process (issue 9): espeak-ng starts through posix_spawn, even on uvloop.

fork() runs the pthread_atfork handlers of every library in the process first; numpy's OpenBLAS
has one that can wait forever while inference threads are inside BLAS, which hung the whole
server. The proof is the kernel's own account: strace lists every process-creating syscall; a fork
is ``fork()`` or a clone without CLONE_VM, a spawn is a clone with CLONE_VM|CLONE_VFORK (or vfork).
The control case shows that the check sees a fork when there is one (uvloop's subprocess API).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

SPAWN_VIA_ENGINE = """
import asyncio, uvloop
from voxshift.config import Settings
from voxshift.engines.base import TTSRequest
from voxshift.engines.espeak import EspeakTTS
from voxshift.engines.pool import InferencePool

async def main():
    pool = InferencePool(2, 8)
    engine = EspeakTTS(Settings(data_dir={data_dir!r}), pool)
    info = engine.info()  # lists espeak-ng's voices: two more processes
    assert info.availability.available, info.availability.reason
    requests = [TTSRequest("Привет, мир", "ru", None), TTSRequest("Hello there", "en", "onyx")] * 3
    speeches = await asyncio.gather(*(engine.synthesize(r) for r in requests))
    assert all(len(s.pcm) > 10000 for s in speeches), [len(s.pcm) for s in speeches]
    pool.shutdown()
    print("OK", len(speeches))

uvloop.run(main())
"""

SPAWN_VIA_UVLOOP = """
import asyncio, shutil, uvloop

async def main():
    proc = await asyncio.create_subprocess_exec(shutil.which("espeak-ng"), "--version",
                                                stdout=asyncio.subprocess.PIPE)
    await proc.communicate()
    print("OK", proc.returncode)

uvloop.run(main())
"""


def process_creations(script: str, tmp_path: Path) -> tuple[list[str], list[str]]:
    """(forks, spawns) seen by strace while ``script`` ran in a fresh interpreter."""
    trace = tmp_path / "trace.txt"
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o", trace, sys.executable, path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OK"), result.stdout
    forks, spawns = [], []
    for line in trace.read_text().splitlines():
        call = re.search(r"\b(fork|vfork|clone3?)\((.*)", line)
        if call is None or "resumed>" in line:
            continue
        name, args = call.groups()
        if name == "fork" or (name.startswith("clone") and "CLONE_VM" not in args):
            forks.append(line)
        elif name == "vfork" or "CLONE_VFORK" in args:
            spawns.append(line)
    return forks, spawns


def test_espeak_synthesis_never_forks_even_on_uvloop(tmp_path: Path) -> None:
    forks, spawns = process_creations(SPAWN_VIA_ENGINE.format(data_dir=str(tmp_path)), tmp_path)
    assert forks == []
    assert len(spawns) == 8  # one per synthesis, plus the two voice listings (once per process)


def test_the_check_sees_uvloops_fork(tmp_path: Path) -> None:
    forks, _ = process_creations(SPAWN_VIA_UVLOOP, tmp_path)
    assert len(forks) == 1, forks
