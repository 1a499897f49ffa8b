"""The schema's head revision constant matches the migration scripts."""

from alembic.config import Config
from alembic.script import ScriptDirectory

from ai1net.server.migrations import HEAD_REVISION
from ai1net.server.storage import MIGRATIONS


def test_head_revision_constant_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


async def test_a_new_sqlite_file_gets_the_same_schema_as_the_migrations(tmp_path):
    """The fast path (create_all + stamp) and Alembic's upgrade build the same tables."""
    from sqlalchemy import create_engine, inspect

    from ai1net.server.storage import Database, _upgrade

    fast = Database(f"sqlite:///{tmp_path / 'fast.db'}")
    await fast.migrate()
    assert await fast.schema_version() == HEAD_REVISION
    await fast.close()
    slow = create_engine(f"sqlite:///{tmp_path / 'slow.db'}")
    with slow.begin() as conn:
        _upgrade(conn)

    def shape(url: str) -> dict:
        engine = create_engine(url)
        found = inspect(engine)
        tables = {t: ({c["name"]: str(c["type"]) for c in found.get_columns(t)},
                      sorted(i["name"] for i in found.get_indexes(t)))
                  for t in found.get_table_names()}
        engine.dispose()
        return tables

    slow.dispose()
    assert shape(f"sqlite:///{tmp_path / 'fast.db'}") == shape(f"sqlite:///{tmp_path / 'slow.db'}")
