"""Run `voxshift serve` as a real subprocess on a free port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# Every user on voice_v2 for both operations: what tests of the v2 engine itself want. The seed's
# defaults (kill switch off, 0 %) would route everything to the reference legacy service.
ALL_ON_V2 = {
    "VOICE_V2_ENABLED": "true",
    "VOICE_V2_ROLLOUT_PERCENTAGE": "100",
    "VOXSHIFT_ANONYMOUS_USERS": "v2",  # the OpenAI SDK sends no user id
    "VOICE_V2_FEATURES": '{"stt_enabled": true, "tts_enabled": true, '
    '"langgraph_integration": false, "caching_enabled": false}',
}


def start_server(
    data_dir: Path, env_overrides: dict[str, str], *, ready_timeout: float = 90.0, all_on_v2: bool = True
) -> RunningServer:
    """``all_on_v2=False`` keeps the seed's defaults (everything on legacy) unless overridden."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env.update({"VOXSHIFT_DATA_DIR": str(data_dir), "VOXSHIFT_LOG_LEVEL": "info"})
    if all_on_v2:
        env.update(ALL_ON_V2)
    env.update(env_overrides)
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxshift.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server not ready after {ready_timeout} s:\n{server.log}")
