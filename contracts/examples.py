"""One realistic example per event type, for the AsyncAPI document, the contract tests and
subscribers' own tests.

Data is written in its wire form (what `Catalog.create` produces), so `create(...).data` equals the
example. Ids and times are fixed, so documents generated from the examples are deterministic.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from contracts import CATALOG
from contracts.catalog import Catalog, EventType
from contracts.envelope import Event

# Times are Shanghai local time, as the platform's users see them.
SHANGHAI = timezone(timedelta(hours=8))
EXAMPLE_TIME = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)

_NAMESPACE = uuid.UUID("5b0f4c52-6a7e-4d0e-9a51-0d3c2f6f1a10")


def _id(name: str) -> str:
    """A stable UUID that reads as what it identifies in the source."""
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True)
class Example:
    data: dict
    subject: str  # the aggregate id, as the producer sets the envelope's `subject`


def example_event_id(type_: str, version: int = 1) -> str:
    return _id(f"event:{type_}:v{version}")


RETURNEE = _id("returnee:li-wei")
ICBC = _id("organization:icbc-changning")
LINKONG_PARK = _id("organization:linkong-park")
PROVIDER = _id("staff:chen-jing")
ADVISOR = _id("staff:zhang-min")
STARTUP_SUPPORT = _id("policy:national-startup-support")
RENT_SUBSIDY = _id("policy:changning-rent-subsidy")
CONSULTATION = _id("consultation:startup-funding")
APPOINTMENT = _id("appointment:li-wei-2026-12-03")
SLOT = _id("slot:2026-12-03T14:00")
OVERSEAS_TALENT = _id("policy:changning-overseas-talent-2026")
APPLICATION = _id("application:li-wei-overseas-talent")
FX_RESOURCE = _id("resource:icbc-cross-border")
OFFICE_RESOURCE = _id("resource:linkong-office")
INTENTION = _id("intention:li-wei-icbc")
SUBSCRIPTION = _id("subscription:changning-crm")
EXCHANGE_SESSION = _id("activity:founding-exchange-session")
WRSA_CHANGNING = _id("organization:wrsa-changning")
BEIXINJING_SUBDISTRICT = _id("organization:beixinjing-subdistrict")
FRIENDSHIP_ASSOCIATION = _id("organization:changning-overseas-friendship-association")
REGISTRATION = _id("registration:li-wei-exchange-session")
PROVIDER_REGISTRATION = _id("registration:chen-jing-exchange-session")
AGREEMENT = _id("agreement:wrsa-beixinjing")
ACTIVITY_INTENTION = _id("intention:li-wei-wrsa-exchange-session")
CRM_WEBHOOK = "https://crm.changning.example.gov.cn/hooks/platform"

_PROFILE = {
    "name": "李伟",
    "email": "li.wei@example.com",
    "phone": "+86 138 0013 8000",
    "locale": "zh-CN",
    "birth_date": "1992-05-14",
    "education": [
        {
            "institution": "Fudan University",
            "country": "CN",
            "degree": "bachelor",
            "field": "Biological Sciences",
            "start_date": "2010-09-01",
            "end_date": "2014-07-01",
            "qs_rank": 39,
            "overseas": False,
        },
        {
            "institution": "Imperial College London",
            "country": "GB",
            "degree": "master",
            "field": "Bioengineering",
            "start_date": "2015-09-28",
            "end_date": "2016-09-30",
            "qs_rank": 2,
            "overseas": True,
        },
    ],
    "return_date": "2021-07-01",
    "has_overseas_job": True,
    "residence_status": "hukou",
    "industry": "biotech",
    "startup_stage": "registered",
    "needs": ["financing", "office_space", "policy_advice"],
    "company": {
        "name": "上海维康生物科技有限公司",
        "registered_district": "Changning",
        "registration_date": "2024-03-18",
        "registered_capital_cny": 1000000,
        "shareholding_pct": 60.0,
        "is_legal_representative": True,
        "is_largest_shareholder": True,
        "vc_raised_cny": None,
    },
    "prior_awards": [],
    "consents": {"matching": True, "notifications": True, "share_with_partners": False},
}

_CONSULTATION = {"consultation_id": CONSULTATION, "returnee_id": RETURNEE, "topic": "funding"}

_APPOINTMENT = {
    "appointment_id": APPOINTMENT,
    "slot_id": SLOT,
    "returnee_id": RETURNEE,
    "starts_at": "2026-12-03T14:00:00+08:00",
    "ends_at": "2026-12-03T14:30:00+08:00",
    "location": "Changning Returnee Entrepreneur Service Station, room 201",
}

_APPLICATION = {
    "application_id": APPLICATION,
    "returnee_id": RETURNEE,
    "policy_id": OVERSEAS_TALENT,
    "code": "changning-overseas-talent-2026",
    "policy_version": 2,
    "tier": "b",
}

_INTENTION = {
    "intention_id": INTENTION,
    "returnee_id": RETURNEE,
    "resource_id": FX_RESOURCE,
    "organization_id": ICBC,
}

_EXCHANGE = {
    "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
    "starts_at": "2026-12-05T14:00:00+08:00",
    "ends_at": "2026-12-05T17:00:00+08:00",
    "venue": {
        "name": "Changning Returnee Entrepreneur Service Station",
        "address": "1 Example Road, Changning District, Shanghai",
    },
    "organizer_ids": [FRIENDSHIP_ASSOCIATION, BEIXINJING_SUBDISTRICT, WRSA_CHANGNING],
}

_REGISTRATION = {
    "registration_id": REGISTRATION,
    "activity_id": EXCHANGE_SESSION,
    "registrant_role": "returnee",
    "returnee_id": RETURNEE,
    "staff_id": None,
    "organization_id": None,
}

_ACTIVITY_INTENTION = {
    "intention_id": ACTIVITY_INTENTION,
    "returnee_id": RETURNEE,
    "resource_id": None,
    "activity_id": EXCHANGE_SESSION,
    "organization_id": WRSA_CHANGNING,
}

EXAMPLES: dict[tuple[str, int], Example] = {
    ("returnee.registered", 1): Example({"returnee_id": RETURNEE, **_PROFILE}, RETURNEE),
    ("returnee.updated", 1): Example(
        {
            "returnee_id": RETURNEE,
            **_PROFILE,
            "needs": ["financing", "cross_border_finance", "office_space", "policy_advice"],
            "company": {**_PROFILE["company"], "vc_raised_cny": 3000000},
            "changed_fields": ["needs", "company"],
        },
        RETURNEE,
    ),
    ("returnee.erased", 1): Example({"returnee_id": RETURNEE}, RETURNEE),
    ("consent.changed", 1): Example(
        {
            "returnee_id": RETURNEE,
            "purpose": "share_with_partners",
            "granted": True,
            "changed_at": "2026-11-28T09:58:12+08:00",
        },
        RETURNEE,
    ),
    ("organization.registered", 1): Example(
        {
            "organization_id": ICBC,
            "name": "ICBC Shanghai Changning Sub-branch",
            "kind": "bank",
            "district": "Changning",
            "contact_email": "returnees.changning@example-icbc.com.cn",
        },
        ICBC,
    ),
    ("staff.registered", 1): Example(
        {
            "staff_id": PROVIDER,
            "email": "chen.jing@example-icbc.com.cn",
            "name": "陈静",
            "role": "provider",
            "organization_id": ICBC,
            "locale": "zh-CN",
        },
        PROVIDER,
    ),
    ("staff.updated", 1): Example(
        {
            "staff_id": ADVISOR,
            "email": "zhang.min@station.example.gov.cn",
            "name": "张敏",
            "role": "admin",
            "organization_id": None,
            "locale": "zh-CN",
            "email_verified": True,
        },
        ADVISOR,
    ),
    ("credentials.revoked", 1): Example(
        {
            "subject": RETURNEE,
            "not_before": "2026-11-28T10:05:00.250000+08:00",
            "reason": "password_changed",
        },
        RETURNEE,
    ),
    ("account.link_issued", 1): Example(
        {
            "account_id": RETURNEE,
            "purpose": "verify_email",
            "email": "li.wei@example.com",
            "name": "李伟",
            "locale": "zh-CN",
            "link": "https://returnees.changning.example.gov.cn/verify-email"
            "?token=Q2hhbmduaW5nLXZlcmlmeS1lbWFpbC1leGFtcGxl",
            "expires_at": "2026-12-05T10:00:00+08:00",
        },
        RETURNEE,
    ),
    ("account.email_verified", 1): Example(
        {"account_id": RETURNEE, "verified_at": "2026-11-28T10:12:40+08:00"}, RETURNEE
    ),
    ("policy.published", 1): Example(
        {
            "policy_id": STARTUP_SUPPORT,
            "code": "national-startup-support",
            "title": {
                "zh-CN": "留学人员回国创业启动支持计划",
                "en": "Start-up Support Plan for Returned Overseas Students",
            },
            "effective_from": "2024-01-01",
            "effective_to": "2026-12-31",
            "version": 2,
        },
        STARTUP_SUPPORT,
    ),
    ("eligibility.assessed", 1): Example(
        {
            "returnee_id": RETURNEE,
            "assessed_at": "2026-11-28T09:59:30+08:00",
            "eligible": [
                {
                    "policy_id": STARTUP_SUPPORT,
                    "code": "national-startup-support",
                    "tier": "key",
                    "version": 2,
                },
                {
                    "policy_id": RENT_SUBSIDY,
                    "code": "changning-rent-subsidy",
                    "tier": None,
                    "version": 2,
                },
            ],
            "newly_eligible": ["national-startup-support"],
            "no_longer_eligible": ["guaranteed-startup-loan-pre-startup"],
        },
        RETURNEE,
    ),
    ("consultation.requested", 1): Example(
        {**_CONSULTATION, "status": "new", "advisor_id": None, "policy_id": STARTUP_SUPPORT},
        CONSULTATION,
    ),
    ("consultation.assigned", 1): Example(
        {**_CONSULTATION, "status": "assigned", "advisor_id": ADVISOR}, CONSULTATION
    ),
    ("consultation.answered", 1): Example(
        {
            **_CONSULTATION,
            "status": "answered",
            "advisor_id": ADVISOR,
            "message_id": _id("message:answer-1"),
        },
        CONSULTATION,
    ),
    ("consultation.waiting_on_returnee", 1): Example(
        {
            **_CONSULTATION,
            "status": "waiting_on_returnee",
            "advisor_id": ADVISOR,
            "message_id": _id("message:ask-capital-proof"),
        },
        CONSULTATION,
    ),
    ("consultation.closed", 1): Example(
        {**_CONSULTATION, "status": "closed", "advisor_id": ADVISOR, "closed_by": "returnee"},
        CONSULTATION,
    ),
    ("consultation.reopened", 1): Example(
        {**_CONSULTATION, "status": "reopened", "advisor_id": ADVISOR, "reopened_by": "returnee"},
        CONSULTATION,
    ),
    ("consultation.rated", 1): Example(
        {**_CONSULTATION, "status": "closed", "advisor_id": ADVISOR, "rating": 5},
        CONSULTATION,
    ),
    ("consultation.sla_breached", 1): Example(
        {
            **_CONSULTATION,
            "advisor_id": None,
            "deadline": "first_response",
            "due_at": "2026-11-28T09:30:00+08:00",
        },
        CONSULTATION,
    ),
    ("application.submitted", 1): Example({**_APPLICATION, "status": "submitted"}, APPLICATION),
    ("application.approved", 1): Example({**_APPLICATION, "status": "approved"}, APPLICATION),
    ("application.rejected", 1): Example({**_APPLICATION, "status": "rejected"}, APPLICATION),
    ("application.awarded", 1): Example(
        {**_APPLICATION, "status": "awarded", "amount_cny": 100000, "awarded_on": "2026-12-18"},
        APPLICATION,
    ),
    ("application.withdrawn", 1): Example(
        {**_APPLICATION, "status": "withdrawn", "withdrawn_from": "submitted"}, APPLICATION
    ),
    ("appointment.booked", 1): Example(_APPOINTMENT, APPOINTMENT),
    ("appointment.cancelled", 1): Example(
        {**_APPOINTMENT, "cancelled_by": "returnee"}, APPOINTMENT
    ),
    ("resource.published", 1): Example(
        {
            "resource_id": FX_RESOURCE,
            "organization_id": ICBC,
            "title": "Cross-border settlement and FX hedging for returnee start-ups",
            "kind": "cross_border_finance",
            "needs_served": ["cross_border_finance", "financing"],
            "industries": [],
            "stages": ["registered", "growth"],
            "district": "Changning",
            "capacity": 50,
            "valid_until": "2027-06-30",
        },
        FX_RESOURCE,
    ),
    ("resource.withdrawn", 1): Example(
        {"resource_id": OFFICE_RESOURCE, "organization_id": LINKONG_PARK}, OFFICE_RESOURCE
    ),
    ("matches.proposed", 1): Example(
        {
            "returnee_id": RETURNEE,
            "matches": [
                {
                    "match_id": _id("match:li-wei-icbc"),
                    "resource_id": FX_RESOURCE,
                    "organization_id": ICBC,
                    "score": 0.86,
                    "reasons": [
                        {
                            "factor": "need",
                            "code": "serves_needs",
                            "args": {"needs": ["cross_border_finance"]},
                            "detail": "serves your need: cross_border_finance",
                        },
                        {
                            "factor": "stage",
                            "code": "stage",
                            "args": {"stage": "registered"},
                            "detail": "stage: registered",
                        },
                        {
                            "factor": "district",
                            "code": "district",
                            "args": {"district": "Changning"},
                            "detail": "district: Changning",
                        },
                    ],
                },
                {
                    "match_id": _id("match:li-wei-linkong"),
                    "resource_id": OFFICE_RESOURCE,
                    "organization_id": LINKONG_PARK,
                    "score": 0.72,
                    "reasons": [
                        {
                            "factor": "need",
                            "code": "serves_needs",
                            "args": {"needs": ["office_space"]},
                            "detail": "serves your need: office_space",
                        },
                        {
                            "factor": "industry",
                            "code": "industry",
                            "args": {"industry": "biotech"},
                            "detail": "industry: biotech",
                        },
                    ],
                },
            ],
            "added_resource_ids": [FX_RESOURCE],
            "removed_resource_ids": [],
        },
        RETURNEE,
    ),
    ("intention.expressed", 1): Example(
        {
            **_INTENTION,
            "status": "expressed",
            "message": "We would like a settlement account for payments from our UK partner.",
        },
        INTENTION,
    ),
    ("intention.accepted", 1): Example(
        {
            **_INTENTION,
            "status": "accepted",
            "message": "Our relationship manager will call you this week.",
        },
        INTENTION,
    ),
    ("intention.declined", 1): Example(
        {**_INTENTION, "status": "declined", "message": None}, INTENTION
    ),
    ("intention.expressed", 2): Example(
        {
            **_ACTIVITY_INTENTION,
            "status": "expressed",
            "message": "We met at the exchange session: could the association introduce mentors?",
        },
        ACTIVITY_INTENTION,
    ),
    ("intention.accepted", 2): Example(
        {**_ACTIVITY_INTENTION, "status": "accepted", "message": "Gladly; we will write to you."},
        ACTIVITY_INTENTION,
    ),
    ("intention.declined", 2): Example(
        {**_ACTIVITY_INTENTION, "status": "declined", "message": None}, ACTIVITY_INTENTION
    ),
    ("activity.published", 1): Example(
        {
            "activity_id": EXCHANGE_SESSION,
            "kind": "exchange",
            **_EXCHANGE,
            "capacity": 60,
            "audience": {"industries": [], "stages": [], "needs": []},
            "registration_closes_at": "2026-12-04T18:00:00+08:00",
        },
        EXCHANGE_SESSION,
    ),
    ("activity.cancelled", 1): Example(
        {"activity_id": EXCHANGE_SESSION, "cancelled_by": "advisor"}, EXCHANGE_SESSION
    ),
    ("activity.closed", 1): Example(
        {
            "activity_id": EXCHANGE_SESSION,
            "registered": 48,
            "attended": 41,
            "organizations_represented": 33,
            "agreements": 1,
            "intentions": 6,
        },
        EXCHANGE_SESSION,
    ),
    ("invitation.issued", 1): Example(
        {"activity_id": EXCHANGE_SESSION, "returnee_id": RETURNEE, "activity": _EXCHANGE}, RETURNEE
    ),
    ("registration.confirmed", 1): Example(
        {
            **_REGISTRATION,
            "status": "confirmed",
            "activity": _EXCHANGE,
            "check_in_code": "K7M2QX9P",
            "promoted": False,
        },
        REGISTRATION,
    ),
    ("registration.waitlisted", 1): Example(
        {**_REGISTRATION, "status": "waitlisted", "activity": _EXCHANGE, "position": 3},
        REGISTRATION,
    ),
    ("registration.cancelled", 1): Example(
        {
            **_REGISTRATION,
            "status": "cancelled",
            "activity": _EXCHANGE,
            "cancelled_by": "registrant",
            "freed_seat": True,
        },
        REGISTRATION,
    ),
    ("attendance.recorded", 1): Example(
        {
            "registration_id": PROVIDER_REGISTRATION,
            "activity_id": EXCHANGE_SESSION,
            "registrant_role": "provider",
            "returnee_id": None,
            "staff_id": PROVIDER,
            "organization_id": ICBC,
            "checked_in_at": "2026-12-05T13:52:10+08:00",
        },
        PROVIDER_REGISTRATION,
    ),
    ("agreement.signed", 1): Example(
        {
            "agreement_id": AGREEMENT,
            "activity_id": EXCHANGE_SESSION,
            "title": "Cooperation agreement on services for returnee entrepreneurs",
            "signed_on": "2026-12-05",
            "parties": [
                {"organization_id": WRSA_CHANGNING, "returnee_id": None},
                {"organization_id": BEIXINJING_SUBDISTRICT, "returnee_id": None},
            ],
        },
        AGREEMENT,
    ),
    ("notification.sent", 1): Example(
        {
            "notification_id": _id("notification:welcome-li-wei"),
            "recipient_id": RETURNEE,
            "channel": "email",
            "template": "welcome",
            "event_id": example_event_id("returnee.registered"),
            "event_type": "returnee.registered",
        },
        _id("notification:welcome-li-wei"),
    ),
    ("notification.failed", 1): Example(
        {
            "notification_id": _id("notification:crm-matches"),
            "recipient_id": SUBSCRIPTION,
            "channel": "webhook",
            "template": "matches_found",
            "event_id": example_event_id("matches.proposed"),
            "event_type": "matches.proposed",
            "reason": "HTTP 503 from the subscriber after 5 attempts",
        },
        _id("notification:crm-matches"),
    ),
    ("subscription.disabled", 1): Example(
        {
            "subscription_id": SUBSCRIPTION,
            "url": CRM_WEBHOOK,
            "reason": "20 consecutive failed deliveries; last: HTTP 503",
            "failures": 20,
        },
        SUBSCRIPTION,
    ),
    ("consulting.personal_data_read", 1): Example(
        {
            "returnee_id": RETURNEE,
            "reader_id": ADVISOR,
            "reader_role": "advisor",
            "what": "eligibility",
            "case_ref": f"consultation:{CONSULTATION}",
            "reason": None,
            "read_at": "2026-11-28T10:05:00+08:00",
        },
        RETURNEE,
    ),
    ("matching.personal_data_read", 1): Example(
        {
            "returnee_id": RETURNEE,
            "reader_id": ADVISOR,
            "reader_role": "advisor",
            "what": "matches",
            "case_ref": None,
            "reason": "Preparing the exchange session's introductions",
            "read_at": "2026-11-28T10:06:00+08:00",
        },
        RETURNEE,
    ),
    ("activities.personal_data_read", 1): Example(
        {
            "returnee_id": RETURNEE,
            "reader_id": ADVISOR,
            "reader_role": "advisor",
            "what": "registrations",
            "case_ref": f"registration:{REGISTRATION}",
            "reason": None,
            "read_at": "2026-11-28T10:07:00+08:00",
        },
        RETURNEE,
    ),
    ("notify.personal_data_read", 1): Example(
        {
            "returnee_id": RETURNEE,
            "reader_id": _id("staff:admin"),
            "reader_role": "admin",
            "what": "notifications",
            "case_ref": None,
            "reason": "The returnee asked why no reminder came",
            "read_at": "2026-11-28T10:08:00+08:00",
        },
        RETURNEE,
    ),
}


def example(type_: str, version: int = 1) -> Example:
    return EXAMPLES[(type_, version)]


def example_event(event_type: EventType, catalog: Catalog = CATALOG) -> Event:
    """The example as the producer would publish it, with a fixed id and time."""
    found = example(event_type.type, event_type.version)
    return catalog.create(
        event_type.producer,
        event_type.type,
        found.data,
        version=event_type.version,
        subject=found.subject,
        id=example_event_id(event_type.type, event_type.version),
        time=EXAMPLE_TIME,
    )
