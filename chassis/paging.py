"""Keyset pages of every list the platform answers (docs/api.md#lists-a-page-at-a-time).

A listing names its order, `Keyset("created_at", "id", types=(datetime, UUID),
descending=True)`: columns of the rows and their types, the last one unique (the id breaks
ties), so the order is total and stable while rows are added. A cursor outside the document's
alphabet is a 400; one in it that is none of this list's (made up, another list's, values not of
its types) is a 422 naming `cursor`, the rule every paged operation states, before any SQL
sees it.

A page is `limit` rows (1..100, default 50) and the cursor of the next: the key of the page's
last row, opaque to clients (base64url of a small JSON array of typed values). A row inserted
between two pages lands before or after the cursor, never shifts the page boundary (no
duplicates, none missed, as `offset` would).

    keyset.clause(query["cursor"])  -> ("(created_at, id) < (%s, %s)", [at, id]) for the SQL
    keyset.page(rows, limit)        -> Page, `rows` fetched with `limit + 1`
    keyset.slice(rows, query)       -> Page of rows held in memory (the stores' twins)

`@http(..., paged=True)` answers a `Page` as the array its schema dumps, with the cursor of the
next page in `Link: <...>; rel="next"` (RFC 8288) and `X-Next-Cursor`; `Page.as_object()` is
the `{items, next}` shape of the listings published that way. Pure (but for the error).
"""

import base64
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from marshmallow import Schema, ValidationError, fields, validate

from chassis.errors import Unprocessable, add_rules

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"  # base64url without padding, as `cursor_of` writes
NOT_CURSOR_TEXT = "Not a cursor: up to 400 letters, digits, - and _."  # breaks the document: 400
NOT_A_CURSOR = "Not a cursor of this list."  # text of the document's alphabet, none of ours: 422
add_rules(NOT_A_CURSOR)
# The rule each paged operation states (chassis.web): a cursor refers to a page answered.
CURSOR_RULE = "cursor, when given, is the next cursor of a page this list answered"
NEXT_HEADER = "X-Next-Cursor"

# Typed values in a cursor: JSON has no dates, ids or decimals, and a key compared in memory
# must come back as what it was.
_TAGS = {"t": datetime.fromisoformat, "d": date.fromisoformat, "u": uuid.UUID, "n": Decimal}


def _tagged(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a cursor's instants carry their offset")
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    raise TypeError(f"{type(value).__name__} cannot be part of a cursor")


def _untagged(item):
    if item is None or isinstance(item, bool | int | float | str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        ((tag, text),) = item.items()
        if tag in _TAGS and isinstance(text, str):
            value = _TAGS[tag](text)
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError("naive instant")
            return value
    raise ValueError("not a cursor value")


def cursor_of(key: tuple) -> str:
    """The opaque text naming a position in a listing (the key of the row a page ended at)."""
    text = json.dumps([_tagged(v) for v in key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def position_of(cursor: str) -> tuple:
    """The key a cursor names; ValueError when it is none of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        items = json.loads(raw.decode())
        if not isinstance(items, list) or not 1 <= len(items) <= 8:
            raise ValueError("not a key")
        return tuple(_untagged(item) for item in items)
    except (ValueError, ArithmeticError, UnicodeDecodeError, TypeError) as exc:  # Decimal's
        raise ValueError(NOT_A_CURSOR) from exc


class Cursor(fields.String):
    """A query's `cursor`: the `next` of a page this listing answered, loaded as its key. Text
    outside the alphabet is a 400 naming the field; text in it that is no cursor of ours breaks
    the stated rule (`NOT_A_CURSOR`, a 422)."""

    def __init__(self, **kwargs):
        metadata = {
            "pattern": CURSOR_PATTERN,
            "description": "Where the page starts: the next cursor of the previous page (its"
            ' `Link: rel="next"` or `X-Next-Cursor` header). Opaque; absent: the first page.',
            **kwargs.pop("metadata", {}),
        }
        kwargs.setdefault("load_default", None)
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        validate.Regexp(CURSOR_PATTERN, error=NOT_CURSOR_TEXT)(text)
        try:
            return position_of(text)
        except ValueError:
            raise ValidationError(NOT_A_CURSOR) from None


class _Limit(fields.Integer):
    """An integer limit, served as at most `MAX_LIMIT` after validation."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        output = super().deserialize(value, attr, data, **kwargs)
        return min(output, MAX_LIMIT) if isinstance(output, int) else output


def limit_field(accepted: int = MAX_LIMIT, **kwargs) -> fields.Integer:
    """`limit`: items on the page, at most `MAX_LIMIT`. A list published before pages with a
    larger maximum keeps accepting it (`accepted`), so a request that was valid stays valid: it
    is served `MAX_LIMIT` items and the next cursor."""
    text = f"Items on the page, at most {MAX_LIMIT}."
    if accepted > MAX_LIMIT:
        text += (f" Values up to {accepted}, accepted before lists were paged, are served as"
                 f" {MAX_LIMIT} with the next page's cursor.")  # fmt: skip
    metadata = {"description": text, **kwargs.pop("metadata", {})}
    kwargs.setdefault("load_default", DEFAULT_LIMIT)
    return _Limit(validate=validate.Range(min=1, max=accepted), metadata=metadata, **kwargs)


class PageQuery(Schema):
    """`limit` and `cursor`: what every list takes (a listing's own query extends it)."""

    limit = limit_field()
    cursor = Cursor()


class Page(list):
    """A page's items (a list) and `next`, the cursor of the following page (None: the last)."""

    def __init__(self, items=(), next: str | None = None):
        super().__init__(items)
        self.next = next

    @property
    def items(self) -> list:
        return list(self)

    def __repr__(self) -> str:
        return f"Page({list(self)!r}, next={self.next!r})"

    def as_object(self, shape=None) -> dict:
        """`{items, next}`, the shape of the listings published with their cursor in the body."""
        items = list(self) if shape is None else [shape(item) for item in self]
        return {"items": items, "next": self.next}

    def map(self, shape) -> "Page":
        return Page([shape(item) for item in self], self.next)


BIGINT = range(-(2**63), 2**63)


def _typed(value, kind):
    """`value` as a key of type `kind` (UUID: the text of one, as the stores give ids), or
    ValueError."""
    if kind is UUID:
        if isinstance(value, UUID | str):
            return str(UUID(str(value)))
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and value in BIGINT:
            return value
    elif kind is str:
        if isinstance(value, str) and "\x00" not in value:
            return value
    elif kind is datetime:
        if isinstance(value, datetime):
            return value
    elif kind is date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
    elif isinstance(value, kind):
        return value
    raise ValueError(f"not a {kind.__name__}")


class Keyset:
    """A listing's order: columns of its rows and their `types` (datetime, date, int, str,
    Decimal, or UUID for the text of an id), the last one unique; all ascending, or all
    descending (newest first). `columns` name the SQL expressions when they differ from the
    rows' keys (`a.created_at` for `created_at`)."""

    def __init__(self, *keys: str, types: tuple[type, ...], descending: bool = False,
                 columns: tuple[str, ...] = ()):  # fmt: skip
        if len(types) != len(keys) or (columns and len(columns) != len(keys)):
            raise TypeError("a keyset names a type (and a column) per key")
        self.keys = keys
        self.types = types
        self.columns = columns or keys
        self.descending = descending

    def key(self, row) -> tuple:
        return tuple(row[k] for k in self.keys)

    def checked(self, position) -> tuple | None:
        """`position` when it can be a key of this listing (as many values, of its types); a
        cursor of another listing is a 422 naming `cursor`."""
        if position is None:
            return None
        try:
            if len(position) != len(self.keys):
                raise ValueError("another listing's")
            return tuple(_typed(v, kind) for v, kind in zip(position, self.types, strict=True))
        except ValueError:
            raise Unprocessable(fields={"cursor": [NOT_A_CURSOR]}) from None

    def clause(self, position) -> tuple[str, list]:
        """The SQL condition of the rows after `position` ("TRUE" for the first page), and its
        parameters; the query orders by `order_by()` and fetches `limit + 1`."""
        position = self.checked(position)
        if position is None:
            return "TRUE", []
        marks = ", ".join(["%s"] * len(position))
        values = list(position)
        return f"({', '.join(self.columns)}) {'<' if self.descending else '>'} ({marks})", values

    def order_by(self) -> str:
        way = " DESC" if self.descending else ""
        return ", ".join(f"{c}{way}" for c in self.columns)

    def page(self, rows: list, limit: int) -> Page:
        """The page of `rows` fetched in order with `limit + 1` (one more tells there is more)."""
        items = list(rows[:limit])
        more = len(rows) > limit
        return Page(items, cursor_of(self.key(items[-1])) if more and items else None)

    def slice(self, rows, query: dict) -> Page:
        """The page of rows held in memory: ordered, after the query's cursor, `limit` of them."""
        position = self.checked(query.get("cursor"))
        ordered = sorted(rows, key=self.key, reverse=self.descending)
        if position is not None:
            try:
                if self.descending:
                    ordered = [r for r in ordered if self.key(r) < position]
                else:
                    ordered = [r for r in ordered if self.key(r) > position]
            except TypeError:  # a cursor of another listing: its values are other types
                raise Unprocessable(fields={"cursor": [NOT_A_CURSOR]}) from None
        return self.page(ordered, query.get("limit", DEFAULT_LIMIT))


def next_link(path: str, args, cursor: str) -> str:
    """The `Link` header naming the next page: the same request with `cursor` replaced."""
    from urllib.parse import urlencode

    pairs = [(k, v) for k, v in args.items(multi=True) if k != "cursor"]
    pairs.append(("cursor", cursor))
    return f'<{path}?{urlencode(pairs)}>; rel="next"'
