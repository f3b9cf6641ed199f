"""Intentions met at an activity: toward an organization, without a resource; who attended which
activity and which organizations organized or attended it, kept from activities' events.

Revision ID: matching_0003
Revises: matching_0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "matching_0003"
down_revision = "matching_0002"
branch_labels = None
depends_on = None

UPGRADE = """
-- Expand only: the release before this one reads resource_id with an inner join and so simply
-- does not list the new kind of intention.
ALTER TABLE intentions ALTER COLUMN resource_id DROP NOT NULL;
ALTER TABLE intentions ADD COLUMN activity_id uuid;
ALTER TABLE intentions ADD CONSTRAINT intentions_on_something
    CHECK (resource_id IS NOT NULL OR activity_id IS NOT NULL);
CREATE UNIQUE INDEX intentions_open_at_activity
    ON intentions (returnee_id, activity_id, organization_id)
    WHERE activity_id IS NOT NULL AND status IN ('expressed', 'accepted');

-- Returnees checked in at an activity (attendance.recorded): who may express an intention there.
CREATE TABLE activity_attendances (
    activity_id uuid NOT NULL,
    returnee_id uuid NOT NULL,
    PRIMARY KEY (activity_id, returnee_id)
);
CREATE INDEX activity_attendances_returnee ON activity_attendances (returnee_id);

-- Organizations that organized an activity (activity.published) or whose representative
-- attended it (attendance.recorded): toward whom an intention there may go.
CREATE TABLE activity_organizations (
    activity_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    PRIMARY KEY (activity_id, organization_id)
);
"""


def upgrade():
    op.execute(UPGRADE)


def downgrade():
    op.execute(
        "DROP TABLE activity_organizations; DROP TABLE activity_attendances;"
        " DROP INDEX intentions_open_at_activity;"
        " ALTER TABLE intentions DROP CONSTRAINT intentions_on_something;"
        " ALTER TABLE intentions DROP COLUMN activity_id;"
        " ALTER TABLE intentions ALTER COLUMN resource_id SET NOT NULL;"
    )
