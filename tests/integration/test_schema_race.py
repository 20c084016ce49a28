"""Replicas starting together on a new embedded database: one creates the schema, the others wait
for it and find it at head (SQLite's DDL is not one transaction, so they used to race on CREATE
TABLE and all but one crashed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from voxshift.stores.db.engine import head_revision

SCRIPT = """
import asyncio, sys
from voxshift.stores.db.engine import ensure_schema
url = "sqlite+aiosqlite:///" + sys.argv[1]
async def main():
    out = await asyncio.gather(*[ensure_schema(url, allow_upgrade=True) for _ in range(3)])
    print(" ".join(out))
asyncio.run(main())
"""


def test_concurrent_first_starts_on_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "settings.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().split() == [head_revision()] * 3
