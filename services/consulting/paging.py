"""Keyset pages of a listing: `limit` items and a `next` cursor naming where the next page
starts (the last item's creation time and id), opaque to clients. Pure."""

import base64
import uuid
from datetime import datetime


def cursor_of(row: dict) -> str:
    text = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def position_of(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) from a cursor; ValueError when it is none of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, id_ = text.split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, str(uuid.UUID(id_))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc


def page(rows: list[dict], limit: int, shape) -> dict:
    """`rows` fetched with `limit + 1`: the page's items (shaped) and the cursor of the next."""
    items = rows[:limit]
    more = len(rows) > limit
    return {"items": [shape(r) for r in items], "next": cursor_of(items[-1]) if more else None}
