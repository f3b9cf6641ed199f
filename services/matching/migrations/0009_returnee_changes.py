"""Returnee changes: each replica holds the returnees' columns in memory (reverse matching) and
reads only the rows changed since it last read. Every write to `returnees` records the writing
transaction's id in `changed_by`; a deleted returnee (consent withdrawn, erased) leaves its
opaque id and that transaction id in `returnee_deletions`, until it is stored again. A replica
that read at a snapshot whose oldest running transaction was X reads next the rows changed by
X or later: whatever committed since is among them, and no writer waits on another.

Also: the catalog's version row records the transaction that took the version last
(`written_by`), so a reader knows when it reads its own transaction's uncommitted writes
(units of work sharing a transaction: a batch of events).

Revision ID: matching_0009
Revises: matching_0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "matching_0009"
down_revision = "matching_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE returnees ADD COLUMN changed_by bigint NOT NULL DEFAULT 0;
        CREATE INDEX returnees_changed_by ON returnees (changed_by);
        CREATE TABLE returnee_deletions (
            returnee_id uuid PRIMARY KEY,
            changed_by bigint NOT NULL
        );
        CREATE INDEX returnee_deletions_changed_by ON returnee_deletions (changed_by);

        CREATE FUNCTION returnees_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.changed_by := pg_current_xact_id()::text::bigint;
            IF TG_OP = 'INSERT' THEN
                DELETE FROM returnee_deletions WHERE returnee_id = NEW.id;
            END IF;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER returnees_changed BEFORE INSERT OR UPDATE ON returnees
            FOR EACH ROW EXECUTE FUNCTION returnees_changed();

        CREATE FUNCTION returnees_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO returnee_deletions (returnee_id, changed_by)
                VALUES (OLD.id, pg_current_xact_id()::text::bigint)
                ON CONFLICT (returnee_id) DO UPDATE SET changed_by = EXCLUDED.changed_by;
            RETURN OLD;
        END
        $$;
        CREATE TRIGGER returnees_deleted AFTER DELETE ON returnees
            FOR EACH ROW EXECUTE FUNCTION returnees_deleted();

        ALTER TABLE catalog_version ADD COLUMN written_by bigint;
        CREATE OR REPLACE FUNCTION resources_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalog_version SET version = version + 1,
                written_by = pg_current_xact_id()::text::bigint
                RETURNING version INTO NEW.version;
            RETURN NEW;
        END
        $$;
        """
    )


def downgrade():
    op.execute(
        """
        CREATE OR REPLACE FUNCTION resources_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalog_version SET version = version + 1 RETURNING version INTO NEW.version;
            RETURN NEW;
        END
        $$;
        ALTER TABLE catalog_version DROP COLUMN written_by;
        DROP TRIGGER returnees_deleted ON returnees;
        DROP FUNCTION returnees_deleted();
        DROP TRIGGER returnees_changed ON returnees;
        DROP FUNCTION returnees_changed();
        DROP TABLE returnee_deletions;
        DROP INDEX returnees_changed_by;
        ALTER TABLE returnees DROP COLUMN changed_by;
        """
    )
