"""Accounts, organizations, staff, returnee profiles, consents, login throttling, erasures.

Revision ID: accounts_0002
Revises: accounts_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "accounts_0002"
down_revision = "accounts_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE organizations (
            id uuid PRIMARY KEY,
            name text NOT NULL,
            kind text NOT NULL,
            district text,
            contact_email text,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        -- Everyone who signs in: returnees and staff. Emails are stored normalized.
        CREATE TABLE accounts (
            id uuid PRIMARY KEY,
            email text NOT NULL UNIQUE,
            password_hash text NOT NULL,
            role text NOT NULL CHECK (role IN ('returnee', 'advisor', 'provider', 'admin')),
            organization_id uuid REFERENCES organizations (id),
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE staff (
            account_id uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
            name text NOT NULL,
            locale text
        );

        CREATE TABLE returnees (
            account_id uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
            profile jsonb NOT NULL,
            -- An ID card or passport number, sealed with AES-GCM under ACCOUNTS_DATA_KEY.
            id_document bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE consents (
            returnee_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            purpose text NOT NULL,
            granted boolean NOT NULL,
            changed_at timestamptz NOT NULL,
            PRIMARY KEY (returnee_id, purpose)
        );

        CREATE TABLE consent_history (
            id bigserial PRIMARY KEY,
            returnee_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            purpose text NOT NULL,
            granted boolean NOT NULL,
            changed_at timestamptz NOT NULL
        );
        CREATE INDEX consent_history_returnee ON consent_history (returnee_id, changed_at);

        -- Failed sign-ins per email and per client address, for throttling (kept 1 day).
        CREATE TABLE login_failures (
            key text NOT NULL,
            failed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX login_failures_key ON login_failures (key, failed_at);

        -- That an account was erased, and when: accountability without personal data.
        CREATE TABLE erasures (
            returnee_id uuid PRIMARY KEY,
            erased_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade():
    op.execute(
        "DROP TABLE erasures, login_failures, consent_history, consents, returnees, staff,"
        " accounts, organizations"
    )
