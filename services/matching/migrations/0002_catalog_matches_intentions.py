"""Organizations, resources, returnee profiles for matching, matches, dismissals, intentions.

Revision ID: matching_0002
Revises: matching_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "matching_0002"
down_revision = "matching_0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    district text,
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE resources (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    title text NOT NULL,
    kind text NOT NULL,
    needs_served text[] NOT NULL,
    industries text[] NOT NULL DEFAULT '{}',
    stages text[] NOT NULL DEFAULT '{}',
    district text,
    capacity integer NOT NULL CHECK (capacity >= 1),
    -- places taken by accepted intentions; the CHECK is the last line against over-acceptance
    taken integer NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= capacity),
    valid_from date,
    valid_until date,
    description text NOT NULL DEFAULT '',
    published_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz
);
CREATE INDEX resources_live ON resources (organization_id) WHERE withdrawn_at IS NULL;

-- The minimum of a returnee's profile matching needs; only with consent to matching.
CREATE TABLE returnees (
    id uuid PRIMARY KEY,
    locale text NOT NULL,
    industry text NOT NULL,
    startup_stage text NOT NULL,
    needs text[] NOT NULL,
    district text,
    profile_time timestamptz NOT NULL
);

CREATE TABLE matches (
    id uuid PRIMARY KEY,
    returnee_id uuid NOT NULL,
    resource_id uuid NOT NULL REFERENCES resources (id),
    organization_id uuid NOT NULL,
    rank integer NOT NULL,
    score double precision NOT NULL,
    reasons jsonb NOT NULL,
    status text NOT NULL DEFAULT 'proposed',
    proposed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (returnee_id, resource_id)
);
CREATE INDEX matches_resource ON matches (resource_id);

-- "not_interested": never proposed again.
CREATE TABLE dismissals (
    returnee_id uuid NOT NULL,
    resource_id uuid NOT NULL,
    dismissed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (returnee_id, resource_id)
);
CREATE INDEX dismissals_resource ON dismissals (resource_id);

-- Erased returnees: only the opaque id, so a late profile event cannot bring the data back.
CREATE TABLE erasures (
    returnee_id uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);

-- Consent to matching withdrawn: only the opaque id and when, so a profile event older than the
-- withdrawal, delivered after it, does not store the profile again.
CREATE TABLE withdrawals (
    returnee_id uuid PRIMARY KEY,
    withdrawn_at timestamptz NOT NULL
);

CREATE TABLE intentions (
    id uuid PRIMARY KEY,
    returnee_id uuid,  -- NULL once the returnee is erased: accepted ones still count
    resource_id uuid NOT NULL REFERENCES resources (id),
    organization_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'expressed',
    message text,
    response text,
    expressed_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz
);
CREATE UNIQUE INDEX intentions_open ON intentions (returnee_id, resource_id)
    WHERE status IN ('expressed', 'accepted');
CREATE INDEX intentions_organization ON intentions (organization_id, status);
CREATE INDEX intentions_returnee ON intentions (returnee_id);
"""


def upgrade():
    op.execute(UPGRADE)


def downgrade():
    op.execute(
        "DROP TABLE intentions; DROP TABLE withdrawals; DROP TABLE erasures;"
        " DROP TABLE dismissals; DROP TABLE matches; DROP TABLE returnees;"
        " DROP TABLE resources; DROP TABLE organizations;"
    )
