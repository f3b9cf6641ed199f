"""Tables the chassis needs in every service's database, created by each service's first
migration through these helpers so the schema still changes only through migrations."""

MESSAGING_TABLES = """
CREATE TABLE outbox (
    id uuid PRIMARY KEY,
    position bigserial NOT NULL,
    exchange text NOT NULL,
    routing_key text NOT NULL,
    subject text,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE INDEX outbox_pending ON outbox (position) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX outbox_subject ON outbox (subject) WHERE published_at IS NOT NULL;

CREATE TABLE inbox (
    handler text NOT NULL,
    event_id uuid NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, event_id)
);
CREATE INDEX inbox_handled_at ON inbox (handled_at);
"""


# Erasure: a row still unpublished when its subject was erased must still reach its consumers (in
# order, before the erasure event), but is deleted once the broker confirmed it instead of being
# kept for retention (`UnitOfWork.forget_published`); so is an event that carries a credential
# (`UnitOfWork.publish(..., keep=False)`: a reset or invitation link).
OUTBOX_FORGETTING = """
ALTER TABLE outbox ADD COLUMN forget_on_publish boolean NOT NULL DEFAULT false;
"""


def add_outbox_forgetting(op) -> None:
    op.execute(OUTBOX_FORGETTING)


def drop_outbox_forgetting(op) -> None:
    op.execute("ALTER TABLE outbox DROP COLUMN forget_on_publish;")


def create_messaging_tables(op) -> None:
    op.execute(MESSAGING_TABLES)


def drop_messaging_tables(op) -> None:
    op.execute("DROP TABLE inbox; DROP TABLE outbox;")


# Per subject, the moment before which its bearer tokens no longer count (`chassis.revocation`),
# kept from accounts' `credentials.revoked` until no token issued before it can still be valid.
REVOCATION_TABLE = """
CREATE TABLE revoked_subjects (
    subject text PRIMARY KEY,
    not_before timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_subjects_not_before ON revoked_subjects (not_before);
"""


def create_revocation_table(op) -> None:
    op.execute(REVOCATION_TABLE)


def drop_revocation_table(op) -> None:
    op.execute("DROP TABLE revoked_subjects;")


# The cases that link a staff member's read to a returnee (`chassis.access`), in a service that
# checks cases another service opens: kept from the events that open them, deleted on erasure.
CASE_LINKS_TABLE = """
CREATE TABLE case_links (
    kind text NOT NULL,
    case_id uuid NOT NULL,
    returnee_id uuid NOT NULL,
    PRIMARY KEY (kind, case_id)
);
CREATE INDEX case_links_returnee ON case_links (returnee_id);
"""


def create_case_links_table(op) -> None:
    op.execute(CASE_LINKS_TABLE)


def drop_case_links_table(op) -> None:
    op.execute("DROP TABLE case_links;")
