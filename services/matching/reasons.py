"""A match's reasons as matching's HTTP API and `matches.proposed` carry them.

A reason is stored as `{"factor", "code", "args"}` and put into words when it is shown, with the
contract's wording (`contracts.reasons`), so the same match reads in the language of whoever
looks at it, here and in every subscriber.
"""

from contracts.reasons import describe

DETAIL_LENGTH = 200  # `MatchReason.detail` of the contract
EVENT_LOCALE = "en"  # the `detail` of events; subscribers render their own language from the code


def explained(reasons, locale: str = "en") -> list[dict]:
    """`[{"factor", "detail"}]` in the caller's language, as the HTTP API carries them."""
    return [{"factor": r["factor"], "detail": describe(r, locale)[:DETAIL_LENGTH]} for r in reasons]


def event_reasons(reasons) -> list[dict]:
    """`[{"factor", "code", "args", "detail"}]` as `matches.proposed` carries them."""
    return [
        {
            "factor": r["factor"],
            "code": r["code"],
            "args": r["args"],
            "detail": describe(r, EVENT_LOCALE)[:DETAIL_LENGTH],
        }
        for r in reasons
    ]
