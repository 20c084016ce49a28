"""The settings database: per-agent voice settings, flag audit, rollout history, user feedback.

SQLAlchemy 2 (asyncio) over SQLite (embedded default) or PostgreSQL (production); the schema is
owned by the Alembic revisions in ``migrations/``.
"""
