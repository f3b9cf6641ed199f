"""A token that changes with every statement writing `policies`, so a replica may keep the
policies in effect on a day in memory and read them again only when the token moved
(`store.ConsultingStore.policies`). A trigger changes it: no code path, seed or hand-written
statement can change the catalog without it.

Revision ID: consulting_0009
Revises: consulting_0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "consulting_0009"
down_revision = "consulting_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE policy_catalog (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            token uuid NOT NULL
        );
        INSERT INTO policy_catalog (token) VALUES (gen_random_uuid());
        CREATE FUNCTION policy_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE policy_catalog SET token = gen_random_uuid();
            RETURN NULL;
        END $$;
        CREATE TRIGGER policies_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
            FOR EACH STATEMENT EXECUTE FUNCTION policy_catalog_changed();
        """
    )


def downgrade():
    op.execute(
        """
        DROP TRIGGER policies_changed ON policies;
        DROP FUNCTION policy_catalog_changed();
        DROP TABLE policy_catalog;
        """
    )
