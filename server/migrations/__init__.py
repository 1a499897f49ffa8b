"""Alembic migrations of the AI1NET schema, run by ``Database.migrate``."""
