"""Alembic migrations of the AI1NET schema, run by ``Database.migrate``."""

# The newest revision; tests/unit/test_migrations.py checks it is Alembic's head.
HEAD_REVISION = "0011"
