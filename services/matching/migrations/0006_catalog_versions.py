"""Catalog versions: every write to a resource takes the next catalog version, so a replica that
holds the catalog in memory reads only the rows changed since the version it holds.

The counter is one row: a transaction that writes a resource holds it until it commits, so
versions commit in the order they were taken and a reader that has seen version N has seen
every change up to N.

Revision ID: matching_0006
Revises: matching_0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "matching_0006"
down_revision = "matching_0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE catalog_version (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            version bigint NOT NULL
        );
        INSERT INTO catalog_version (one, version) VALUES (true, 0);
        ALTER TABLE resources ADD COLUMN version bigint NOT NULL DEFAULT 0;
        CREATE INDEX resources_version ON resources (version);

        CREATE FUNCTION resources_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalog_version SET version = version + 1 RETURNING version INTO NEW.version;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER resources_versioned BEFORE INSERT OR UPDATE ON resources
            FOR EACH ROW EXECUTE FUNCTION resources_next_version();
        """
    )


def downgrade():
    op.execute(
        "DROP TRIGGER resources_versioned ON resources;"
        " DROP FUNCTION resources_next_version();"
        " DROP INDEX resources_version;"
        " ALTER TABLE resources DROP COLUMN version;"
        " DROP TABLE catalog_version;"
    )
