"""Pages from Jinja2 templates (`templates/`), in the person's language.

Every word of the interface goes through `_("English text", name=value)`: the Chinese is in
`messages.py`, placeholders are filled after translation. Values of the platform's closed
vocabularies are named with `label("needs", value)` (`contracts.labels`).
"""

import hashlib
from datetime import date, datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from werkzeug.wrappers import Response

from chassis.clock import SHANGHAI
from chassis.i18n import translate
from contracts import labels
from services.portal import (
    forms,
    messages,  # noqa: F401  (registers the interface's Chinese)
)
from services.portal.upstream import Unavailable

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


@cache
def static_version(name: str) -> str:
    """A digest of a static file, in its URL, so a new release is never served from cache."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version(name)}"


def text(locale: str, english: str, **params) -> str:
    words = translate(english, locale)
    return words.format(**params) if params else words


@pass_context
def _(context, english: str, **params) -> str:
    return text(context["locale"], english, **params)


@pass_context
def label(context, vocabulary: str, value) -> str:
    return labels.label(vocabulary, value, context["locale"])


@pass_context
def choices(context, vocabulary: str):
    return labels.choices(vocabulary, context["locale"])


def _moment(value):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value


def when(value) -> str:
    """A moment as people here read it: Shanghai time, to the minute."""
    moment = _moment(value)
    if not isinstance(moment, datetime):
        return str(value or "")
    if moment.tzinfo is not None:
        moment = moment.astimezone(SHANGHAI)
    return moment.strftime("%Y-%m-%d %H:%M")


def day(value) -> str:
    moment = _moment(value)
    if isinstance(moment, datetime):
        return when(moment)[:10]
    if isinstance(moment, date):
        return moment.isoformat()
    return str(value or "")


def localized(value, locale: str) -> str:
    """A `{"zh-CN": ..., "en": ...}` text in the person's language."""
    if isinstance(value, dict):
        return value.get(locale) or value.get("en") or value.get("zh-CN") or ""
    return value or ""


# Consultation topics (consulting's slugs) and the services, in words.
TOPICS = {
    "funding": "Funding and grants",
    "policy": "Policy questions",
    "hukou": "Residence and hukou",
    "company_registration": "Company registration",
    "cross_border_finance": "Cross-border finance",
    "office_space": "Office space",
    "general": "Anything else",
}
SERVICE_NAMES = {
    "accounts": "sign-in and profile service",
    "consulting": "policy consultation service",
    "matching": "resource matching service",
    "notify": "notification service",
    "activities": "activities service",
    "insights": "district statistics service",
}


@pass_context
def topic_name(context, topic: str) -> str:
    return text(context["locale"], TOPICS[topic]) if topic in TOPICS else topic


@pass_context
def field_name(context, name: str) -> str:
    """A form field's name as its label says it, for the error summary."""
    return forms.field_name(name, lambda english, **p: text(context["locale"], english, **p))


@pass_context
def policy_choices(context, policies) -> list[tuple[str, str]]:
    return [(p["id"], localized(p["title"], context["locale"])) for p in policies or ()]


# Each staff role's navigation (English; the page translates).
STAFF_NAV = {
    "advisor": (
        ("/console", "Consultation queue"),
        ("/console/returnees", "Find a returnee"),
        ("/console/appointments", "Appointment slots"),
        ("/console/activities", "Activities"),
    ),
    "provider": (
        ("/partner", "Our resources"),
        ("/partner/intentions", "Intentions"),
        ("/partner/figures", "Our figures"),
    ),
    "admin": (
        ("/admin", "Administration"),
        ("/admin/organizations", "Organizations"),
        ("/admin/staff", "Staff"),
        ("/admin/policies", "Policies"),
        ("/admin/canned-replies", "Canned replies"),
        ("/admin/imports", "Imports"),
        ("/admin/dead-letters", "Dead letters"),
        ("/district", "District dashboard"),
    ),
    "official": (("/district", "District dashboard"),),
}

ENVIRONMENT = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.globals.update(
    _=_,
    label=label,
    choices=choices,
    static_url=static_url,
    topic_name=topic_name,
    field_name=field_name,
    policy_choices=policy_choices,
    service_names=SERVICE_NAMES,
    staff_nav=STAFF_NAV,
)
ENVIRONMENT.filters.update(when=when, day=day)
ENVIRONMENT.tests["unavailable"] = lambda value: isinstance(value, Unavailable)


def switch_language(request, locale: str) -> str:
    """This page's address in the other language."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return f"{request.path}?{urlencode([*args, ('lang', locale)])}"


def render(request, template: str, status: int = 200, **context) -> Response:
    session = request.session
    locale = request.locale
    page = {
        "request": request,
        "locale": locale,
        "other_locale": "en" if locale == "zh-CN" else "zh-CN",
        "switch_url": switch_language(request, "en" if locale == "zh-CN" else "zh-CN"),
        "session": session,
        "signed_in": session.signed_in,
        "csrf_token": session.csrf_token(),
        "flash": session.pop("flash", None),
        "path": request.path,
        "t": lambda value: localized(value, locale),
        "countries": forms.countries(locale),
        "topic_choices": [(slug, text(locale, words)) for slug, words in TOPICS.items()],
        **context,
    }
    body = ENVIRONMENT.get_template(template).render(page)
    return Response(body, status=status, content_type="text/html; charset=utf-8")
