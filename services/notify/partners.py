"""What leaves the platform for district systems (PIPL art. 23): an event about a returnee goes
out whole only when they granted `share_with_partners`; otherwise in its pseudonymous view
(`contracts.partners`).

Both ways out take the same view: webhook deliveries (`payloads.webhook_delivery`) and the
partner exchange `partners.events` that `district-subscriber` reads (the producers' own
exchanges are the platform's inside: no district user may read them).
"""

import json

from contracts import Event
from contracts.partners import (
    PARTNER_EXCHANGE,
    PRIVATE_EVENTS,
    PROFILE_EVENTS,
    PSEUDONYMOUS_SUFFIX,
    pseudonymous_data,
)

__all__ = ["PARTNER_EXCHANGE", "PRIVATE_EVENTS", "partner_view", "pseudonymous_data"]


def concerns_returnee(event: Event) -> str | None:
    """The returnee an event is about, if any."""
    found = event.data.get("returnee_id")
    return None if found is None else str(found)


def consent_in(event: Event) -> bool | None:
    """The share_with_partners consent an event itself states (a profile event), else None."""
    if event.type in PROFILE_EVENTS:
        return bool(event.data["consents"]["share_with_partners"])
    return None


def partner_view(event: Event, shares: bool) -> bytes:
    """The bytes a district system receives: the producer's own when the event concerns no
    returnee or the returnee shares with partners; the pseudonymous view otherwise."""
    raw = event.raw or event.to_json()
    if shares or concerns_returnee(event) is None:
        return raw
    body = json.loads(raw)
    body["data"] = pseudonymous_data(event.type, body["data"])
    body["dataschema"] = f"{body['dataschema']}{PSEUDONYMOUS_SUFFIX}"
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
