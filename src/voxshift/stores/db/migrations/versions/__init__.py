"""Alembic revisions, oldest first; each file is one reviewed schema change."""
