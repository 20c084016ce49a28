"""Alembic environment and revisions (a package so setuptools ships it with voxshift)."""
