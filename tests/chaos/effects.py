"""A stream of registrations under faults, and what it must leave in the services' databases,
counted the same way by every chaos test: nothing lost, nothing doubled."""

import time

import psycopg2
import requests

from tests.support import query

WELCOME_SUBJECTS = ("欢迎加入", "Welcome to")  # services/notify/templates/*/welcome.txt


def register_until_accepted(platform, body) -> str:
    """A client that keeps trying through outages; 409 means an earlier try went through."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            response = platform.call("POST", "accounts", "/returnees", json=body)
        except requests.RequestException:
            time.sleep(0.5)
            continue
        if response.status_code in (201, 409):
            return body["email"]
        assert response.status_code in (502, 503), response.text
        time.sleep(0.5)
    raise AssertionError(f"{body['email']} never registered")


def patient_query(url, sql, params=None):
    """Queries that ride out a PostgreSQL restart."""
    for _ in range(60):
        try:
            return query(url, sql, params)
        except psycopg2.OperationalError:
            time.sleep(1)
    return query(url, sql, params)


def registered_ids(platform) -> set[str]:
    """The returnees accounts holds."""
    rows = patient_query(
        platform.database_urls["accounts"],
        "SELECT a.id FROM accounts a JOIN returnees r ON r.account_id = a.id",
    )
    ids = {str(row["id"]) for row in rows}
    assert len(ids) == len(rows)
    return ids


# Who each of the other subscribers to `returnee.registered` holds once it took the event in.
KNOWN = {
    "consulting": "SELECT id::text AS id FROM returnees WHERE assessed_at IS NOT NULL",
    "matching": "SELECT id::text AS id FROM returnees",
    "activities": "SELECT id::text AS id FROM returnees",
    "insights": "SELECT returnee_id::text AS id FROM returnees WHERE registered_at IS NOT NULL",
}


def known(platform, service: str) -> set[str]:
    return {r["id"] for r in patient_query(platform.database_urls[service], KNOWN[service])}


def converged(platform, ids: set[str]) -> bool:
    """Every one of `ids` assessed by consulting, known to matching and activities, counted by
    insights, welcomed on both channels."""
    sent = patient_query(
        platform.database_urls["notify"],
        "SELECT DISTINCT recipient_id, channel FROM notifications"
        " WHERE template = 'welcome' AND status = 'sent'",
    )
    return len(sent) >= 2 * len(ids) and all(known(platform, s) >= ids for s in KNOWN)


def assert_processed_once(platform, ids: set[str]) -> None:
    """One welcome per returnee and channel in notify; one assessment and one current match set
    per returnee, one event each, however often the registration was delivered."""
    welcomes = patient_query(
        platform.database_urls["notify"],
        "SELECT recipient_id, channel, count(*) AS n FROM notifications"
        " WHERE template = 'welcome' GROUP BY recipient_id, channel",
    )
    assert {(str(w["recipient_id"]), w["channel"]) for w in welcomes} == {
        (i, c) for i in ids for c in ("email", "in_app")
    }
    assert all(w["n"] == 1 for w in welcomes), "a welcome doubled"
    for service, event_type in (("consulting", "eligibility.assessed"),
                                ("matching", "matches.proposed")):  # fmt: skip
        rows = patient_query(
            platform.database_urls[service],
            "SELECT subject, count(*) AS n FROM outbox WHERE routing_key = %s GROUP BY subject",
            (event_type,),
        )
        per_returnee = {r["subject"]: r["n"] for r in rows if r["subject"] in ids}
        assert set(per_returnee) == ids, f"{event_type} missing for some returnees"
        assert set(per_returnee.values()) == {1}, f"{event_type} published twice for some"
    # activities and insights keep one row per returnee (doubling cannot show there): none lost.
    for service in ("activities", "insights"):
        missing = ids - known(platform, service)
        assert not missing, f"{service} lost {len(missing)} registrations"
