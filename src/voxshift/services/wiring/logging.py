"""Process-wide logging set-up for the server: one line per event, no access-log noise."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Client libraries narrate every connection at INFO ("Found credentials in environment ...").
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "aiosqlite", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
