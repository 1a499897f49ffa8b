"""The schema's head revision constant matches the migration scripts."""

from alembic.config import Config
from alembic.script import ScriptDirectory

from ai1net.server.migrations import HEAD_REVISION
from ai1net.server.storage import MIGRATIONS


def test_head_revision_constant_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]
