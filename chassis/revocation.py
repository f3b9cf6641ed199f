"""Revoked bearer tokens: each service's own copy of accounts' `credentials.revoked`.

After a password change, an erasure, a staff account's disabling or a role change, accounts
publishes `credentials.revoked {subject, not_before}`: a token of that subject issued before
`not_before` no longer counts, on any service.

- One replica of each service takes the event (the subscriber every `Operable` service has,
  inbox included) into the service's table `revoked_subjects` (`chassis.schema`). Accounts
  writes its own in the unit of work that revokes (`record`): it needs no event of its own.
- Every replica reloads that table into memory each `POLL_SECONDS` (`Revocations`), which the
  `@http` authentication reads: no query per request, and a revocation holds on every replica
  about a second after accounts committed it.
- Rows are kept `KEPT`: a token issued before that has expired anyway (access tokens live at most
  15 minutes, `chassis.settings.MAX_ACCESS_TOKEN_SECONDS`).
"""

import logging
from datetime import timedelta

from contracts import Event

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
KEPT = timedelta(hours=1)


def record_revocation(event: Event, uow) -> None:
    """`credentials.revoked` into the service's table."""
    record(uow, event.data["subject"], event.data["not_before"])


def record(uow, subject, not_before) -> None:
    """The subject's tokens issued before `not_before` void, in the unit of work's transaction;
    a later `not_before` wins."""
    uow.execute(
        "INSERT INTO revoked_subjects (subject, not_before, recorded_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (subject) DO UPDATE SET"
        " not_before = GREATEST(revoked_subjects.not_before, excluded.not_before),"
        " recorded_at = excluded.recorded_at",
        (str(subject), not_before, uow.now()),
    )


class Revocations:
    """Per subject, the epoch second before which its tokens no longer count."""

    def __init__(self, not_before: dict[str, float] | None = None):
        self._not_before = dict(not_before or {})

    def revoked(self, subject: str, issued_at: float) -> bool:
        not_before = self._not_before.get(subject)
        return not_before is not None and issued_at < not_before

    def reload(self, pool) -> None:
        """The table as it is now (the rows still worth keeping) replaces what was held."""
        with pool.cursor() as cursor:
            cursor.execute(
                "SELECT subject, extract(epoch FROM not_before)::float8 AS not_before"
                " FROM revoked_subjects WHERE not_before > now() - %s",
                (KEPT,),
            )
            self._not_before = {row["subject"]: row["not_before"] for row in cursor.fetchall()}

    @staticmethod
    def prune(pool) -> int:
        with pool.cursor() as cursor:
            cursor.execute("DELETE FROM revoked_subjects WHERE not_before < now() - %s", (KEPT,))
            return cursor.rowcount
