"""Account lifecycle and credentials: verified addresses, disabled staff, invited staff without
a password yet, refresh tokens, single-use links, throttling of any attempt, revoked subjects.

`login_failures` stays for the replicas of the previous release during the rollout; nothing
reads it any more, and a later release drops it.

Revision ID: accounts_0004
Revises: accounts_0003
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "accounts_0004"
down_revision = "accounts_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        -- An invited staff member has no password until they set one through their link.
        ALTER TABLE accounts ALTER COLUMN password_hash DROP NOT NULL;
        ALTER TABLE accounts ADD COLUMN email_verified_at timestamptz;
        ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;
        -- Accounts from before verification existed were mailed as verified ones: they stay so.
        UPDATE accounts SET email_verified_at = created_at;

        -- One sign-in's chain of refresh tokens is a family: each use rotates the token, and a
        -- used one presented again revokes the whole family.
        CREATE TABLE refresh_tokens (
            token_hash bytea PRIMARY KEY,
            family_id uuid NOT NULL,
            account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            issued_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            revoked_at timestamptz
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
        CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);

        -- Single-use links emailed to the account's address (their tokens as digests only).
        CREATE TABLE account_links (
            token_hash bytea PRIMARY KEY,
            account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            purpose text NOT NULL
                CHECK (purpose IN ('verify_email', 'reset_password', 'set_password')),
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz
        );
        CREATE INDEX account_links_account ON account_links (account_id, purpose);

        -- Attempts counted by the throttles (sign-ins, registrations, reset requests), under
        -- digests of what they count by: no email or address is stored. Kept a day at most.
        CREATE TABLE throttle_hits (
            id bigserial PRIMARY KEY,
            key text NOT NULL,
            hit_at timestamptz NOT NULL
        );
        CREATE INDEX throttle_hits_key ON throttle_hits (key, hit_at);
        CREATE INDEX throttle_hits_hit_at ON throttle_hits (hit_at);
        """
    )
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
    op.execute(
        "DROP TABLE throttle_hits, account_links, refresh_tokens;"
        " ALTER TABLE accounts DROP COLUMN disabled_at, DROP COLUMN email_verified_at;"
    )
