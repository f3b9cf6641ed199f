"""The documents an application for a policy needs: "tell everything once" (一次告知).

Each policy lists them: `documents: [{id, title {zh-CN, en}, note? {zh-CN, en}, tiers?}]`; a
document with `tiers` is needed only for those tiers, one without for every application. Pure.
"""

import re

from contracts.vocabulary import SLUG

LOCALES = ("zh-CN", "en")


def needed(policy: dict, tier: str | None) -> list[dict]:
    """The documents an application for `tier` needs, in the policy's order. With no tier (an
    untiered policy, or a tier not known yet) every document that names no tier, and for a
    tiered policy whose tier is unknown every document: nothing is left out."""
    documents = policy.get("documents") or []
    if tier is None and policy.get("tiers"):
        return list(documents)
    return [d for d in documents if not d.get("tiers") or tier in d["tiers"]]


def shown(document: dict, lang: str) -> dict:
    """A document as an answer in `lang` shows it."""
    note = document.get("note")
    return {
        "id": document["id"],
        "title": document["title"][lang],
        "note": note[lang] if note else None,
        "tiers": document.get("tiers") or None,
    }


def validate(policy: dict) -> dict[str, str]:
    """What is wrong with the policy's document list, by path; empty when nothing is."""
    errors, seen = {}, set()
    tiers = {t["code"] for t in policy.get("tiers") or ()}
    for i, document in enumerate(policy.get("documents") or ()):
        where = f"documents[{i}]"
        if not isinstance(document, dict) or not re.match(SLUG, str(document.get("id", ""))):
            errors[where] = "needs an id (lower-case letters, digits, _)"
            continue
        if not _localized(document.get("title")) or (
            document.get("note") is not None and not _localized(document["note"])
        ):
            errors[where] = "title and note need zh-CN and en"
        elif document["id"] in seen:
            errors[where] = f"duplicate id {document['id']}"
        seen.add(document["id"])
        unknown = [t for t in document.get("tiers") or () if t not in tiers]
        if unknown and where not in errors:
            errors[where] = f"unknown tier {', '.join(unknown)}"
    return errors


def _localized(text) -> bool:
    return isinstance(text, dict) and all(isinstance(text.get(k), str) and text[k] for k in LOCALES)
