"""chassis.paging: cursors, the page query, and keyset pages that hold while rows are added."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from chassis.errors import HttpError, invalid
from chassis.paging import (
    NOT_A_CURSOR,
    NOT_CURSOR_TEXT,
    Keyset,
    Page,
    PageQuery,
    cursor_of,
    next_link,
    position_of,
)

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_cursor_gives_back_the_key_it_was_made_of_with_its_types():
    key = (AT, date(2026, 12, 1), uuid.UUID(int=7), Decimal("1.50"), "湘", 3, None)
    cursor = cursor_of(key)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert position_of(cursor) == key


NOT_CURSORS = ["", "%%%", "bm90IGpzb24", "e30", "W10", "W3sieCI6IjEifV0",
               "W3sidCI6IjIwMjYtMTItMDFUMDg6MDA6MDAifV0", "W3sibiI6Ingi", "W3sibiI6IngifV0",
               "W3sidSI6IngifV0", "W3sidCI6NX1d"]  # fmt: skip


@pytest.mark.parametrize("text", NOT_CURSORS)
def test_text_that_is_not_one_of_our_cursors_is_refused(text):
    # not base64, not JSON, {}, [], an unknown tag, an instant without its offset, broken
    # JSON, a decimal, an id and an instant that are none
    with pytest.raises(ValueError):
        position_of(text)


def test_a_naive_instant_cannot_make_a_cursor():
    with pytest.raises(ValueError):
        cursor_of((datetime(2026, 12, 1),))


def test_the_page_query_takes_a_limit_of_1_to_100_default_50_and_a_cursor():
    assert PageQuery().load({}) == {"limit": 50, "cursor": None}
    assert PageQuery().load({"limit": "100"})["limit"] == 100
    for limit in ("0", "101", "x"):
        with pytest.raises(ValidationError) as refused:
            PageQuery().load({"limit": limit})
        assert set(refused.value.messages) == {"limit"}
    cursor = cursor_of((AT, "a"))
    assert PageQuery().load({"cursor": cursor})["cursor"] == (AT, "a")
    for bad in ("not a cursor!", "x" * 401):  # outside the document's pattern: a 400
        with pytest.raises(ValidationError) as refused:
            PageQuery().load({"cursor": bad})
        assert refused.value.messages == {"cursor": [NOT_CURSOR_TEXT]}
        assert invalid(refused.value.messages).status == 400
    with pytest.raises(ValidationError) as refused:  # in it, but none of ours: the rule, a 422
        PageQuery().load({"cursor": "e30"})
    assert refused.value.messages == {"cursor": [NOT_A_CURSOR]}
    assert invalid(refused.value.messages).status == 422


def rows(n, start=0):
    # ties on `at` every three rows: the id orders them
    return [{"at": AT + timedelta(minutes=(start + i) // 3), "id": f"{start + i:04d}"}
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize("descending", [False, True])
def test_walking_the_pages_with_rows_added_between_them_misses_none_and_repeats_none(descending):
    keyset = Keyset("at", "id", types=(datetime, str), descending=descending)
    table = rows(25)
    seen, query = [], {"limit": 7, "cursor": None}
    for step in range(20):
        page = keyset.slice(table, query)
        seen.extend(r["id"] for r in page)
        # a row inserted after the page's boundary is read later; one before it never shifts it
        table = (
            table + rows(1, start=100 + step) + [{"at": AT - timedelta(days=1), "id": f"x{step}"}]
        )
        if page.next is None:
            break
        query = {"limit": 7, "cursor": position_of(page.next)}
    assert len(seen) == len(set(seen))  # none twice
    assert {f"{i:04d}" for i in range(25)} <= set(seen)  # none of those there at first missed
    keys = {r["id"]: keyset.key(r) for r in table}
    assert seen == sorted(seen, key=keys.get, reverse=descending)  # in the listing's order
    past_the_boundary = "x" if descending else "01"  # older rows when newest first
    assert any(i.startswith(past_the_boundary) for i in seen)  # rows added there are read


def test_the_last_page_has_no_next_and_an_empty_list_one_page():
    keyset = Keyset("at", "id", types=(datetime, str))
    assert keyset.slice([], {"limit": 5, "cursor": None}) == Page([], None)
    page = keyset.slice(rows(5), {"limit": 5, "cursor": None})
    assert len(page) == 5 and page.next is None
    page = keyset.slice(rows(6), {"limit": 5, "cursor": None})
    assert len(page) == 5 and position_of(page.next) == (rows(5)[-1]["at"], "0004")


def test_a_cursor_of_another_listing_is_a_422_naming_cursor():
    keyset = Keyset("at", "id", types=(datetime, str))
    for position in (("only one",), (1, 2), (None, "a")):
        with pytest.raises(HttpError) as refused:
            keyset.slice(rows(3), {"limit": 5, "cursor": position})
        assert refused.value.status == 422 and set(refused.value.fields) == {"cursor"}


def test_the_sql_clause_compares_the_key_as_a_row_in_the_listings_direction():
    newest = Keyset(
        "created_at",
        "id",
        types=(datetime, UUID),
        descending=True,
        columns=("a.created_at", "a.id"),
    )
    assert newest.clause(None) == ("TRUE", [])
    clause, values = newest.clause((AT, uuid.UUID(int=1)))
    assert clause == "(a.created_at, a.id) < (%s, %s)"
    assert values == [AT, str(uuid.UUID(int=1))]
    assert newest.order_by() == "a.created_at DESC, a.id DESC"
    assert Keyset("code", types=(str,)).clause(("x",)) == ("(code) > (%s)", ["x"])


def test_a_page_is_its_items_and_keeps_the_shape_of_the_listings_with_a_body_cursor():
    page = Page([1, 2], "abc")
    assert page == [1, 2] and page.next == "abc"
    assert page.map(str) == ["1", "2"] and page.map(str).next == "abc"
    assert page.as_object(lambda n: n * 10) == {"items": [10, 20], "next": "abc"}


def test_the_next_link_is_the_same_request_with_the_cursor_replaced():
    args = MultiDict([("status", "open"), ("cursor", "old"), ("limit", "5")])
    assert next_link("/consultations", args, "new") == (
        '</consultations?status=open&limit=5&cursor=new>; rel="next"'
    )


def test_a_made_up_cursor_of_the_right_length_but_other_types_never_reaches_the_sql():
    # a 422 naming cursor, as a cursor of another list
    keyset = Keyset("created_at", "id", types=(datetime, UUID))
    some_id = uuid.uuid4()
    assert keyset.clause((AT, str(some_id).upper()))[1] == [AT, str(some_id)]
    assert keyset.clause((AT, some_id))[1] == [AT, str(some_id)]
    counted = Keyset("at", "n", types=(datetime, int))
    for made_up in ((AT, "not an id"), ("2026-12-01", str(some_id)), (AT, 5), (AT, True)):
        with pytest.raises(HttpError) as refused:
            keyset.clause(made_up)
        assert refused.value.status == 422 and set(refused.value.fields) == {"cursor"}
    for made_up in ((AT, 2**63), (AT, True), (AT, "1")):
        with pytest.raises(HttpError):
            counted.clause(made_up)
    with pytest.raises(HttpError):
        Keyset("name", types=(str,)).clause(("nul \x00 inside",))


def test_a_list_published_with_a_larger_maximum_still_takes_it_and_serves_a_page():
    from marshmallow import Schema

    from chassis.paging import limit_field

    class Legacy(Schema):
        limit = limit_field(accepted=1000)

    assert Legacy().load({})["limit"] == 50
    assert Legacy().load({"limit": "80"})["limit"] == 80
    assert Legacy().load({"limit": "1000"})["limit"] == 100  # valid before pages: a page of 100
    for limit in ("0", "1001"):
        with pytest.raises(ValidationError) as refused:
            Legacy().load({"limit": limit})
        assert set(refused.value.messages) == {"limit"}
