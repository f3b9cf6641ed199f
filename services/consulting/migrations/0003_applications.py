"""Dated policy versions, documents per policy, the version each assessment used, the matching
consent of each returnee (the caseload an impact preview counts), and applications with their
checklists and histories.

Revision ID: consulting_0003
Revises: consulting_0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "consulting_0003"
down_revision = "consulting_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
ALTER TABLE policies ADD COLUMN documents jsonb NOT NULL DEFAULT '[]';

-- Every version ever published; `policies` holds the one in force now. A version is in force
-- from the day (Shanghai) it was published until the next one's day.
CREATE TABLE policy_versions (
    policy_id uuid NOT NULL REFERENCES policies (id),
    version integer NOT NULL,
    code text NOT NULL,
    title jsonb NOT NULL,
    summary jsonb NOT NULL,
    citation jsonb NOT NULL,
    effective_from date NOT NULL,
    effective_to date,
    application_deadline date,
    criteria jsonb NOT NULL,
    tiers jsonb NOT NULL,
    documents jsonb NOT NULL,
    published_at timestamptz NOT NULL,
    in_force_from date NOT NULL,
    PRIMARY KEY (policy_id, version)
);
INSERT INTO policy_versions (policy_id, version, code, title, summary, citation, effective_from,
        effective_to, application_deadline, criteria, tiers, documents, published_at,
        in_force_from)
    SELECT id, version, code, title, summary, citation, effective_from, effective_to,
        application_deadline, criteria, tiers, documents, published_at,
        (published_at AT TIME ZONE 'Asia/Shanghai')::date
    FROM policies;

ALTER TABLE eligibilities ADD COLUMN version integer;  -- NULL: assessed before versions
ALTER TABLE returnees ADD COLUMN matching_consent boolean NOT NULL DEFAULT false;

CREATE TABLE applications (
    id uuid PRIMARY KEY,
    returnee_id uuid NOT NULL,
    policy_id uuid NOT NULL REFERENCES policies (id),
    code text NOT NULL,
    policy_version integer NOT NULL,
    tier text,
    status text NOT NULL,
    rejection_reason text,
    amount_cny bigint CHECK (amount_cny >= 0),
    awarded_on date,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- One open application per returnee and policy; a closed one may be followed by a new one.
CREATE UNIQUE INDEX applications_one_open ON applications (returnee_id, policy_id)
    WHERE status IN ('draft', 'submitted', 'under_review', 'approved');
CREATE INDEX applications_listing ON applications (created_at DESC, id DESC);
CREATE INDEX applications_returnee ON applications (returnee_id, created_at DESC, id DESC);

CREATE TABLE application_documents (
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    position integer NOT NULL,
    document_id text NOT NULL,
    title jsonb NOT NULL,
    note jsonb,
    provided boolean NOT NULL DEFAULT false,
    reference text,
    marked_at timestamptz,
    PRIMARY KEY (application_id, document_id)
);

CREATE TABLE application_history (
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    position bigserial NOT NULL,  -- the history's order, even for steps taken in one instant
    from_status text,
    status text NOT NULL,
    actor_id uuid NOT NULL,
    actor_role text NOT NULL,
    at timestamptz NOT NULL,
    note text,
    PRIMARY KEY (application_id, position)
);
"""
    )


def downgrade():
    op.execute(
        """
DROP TABLE application_history, application_documents, applications, policy_versions;
ALTER TABLE returnees DROP COLUMN matching_consent;
ALTER TABLE eligibilities DROP COLUMN version;
ALTER TABLE policies DROP COLUMN documents;
"""
    )
