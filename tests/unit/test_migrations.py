"""Each service's migrations form one chain, with one head: two branches that each add a
migration after the same one (a merge of parallel work) would leave `chassis.migrate` with two
heads, and no service of that kind would start."""

import pytest
from alembic.script import ScriptDirectory

from chassis.migrate import alembic_config
from chassis.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_of_a_service_have_one_head(service):
    script = ScriptDirectory.from_config(alembic_config(service))
    assert len(script.get_heads()) == 1, script.get_heads()
    revisions = list(script.walk_revisions())
    assert len({r.revision for r in revisions}) == len(revisions)
