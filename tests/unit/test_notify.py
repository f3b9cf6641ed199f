"""notify's rules without I/O: planning, preferences, quiet hours, backoff, digests, signatures,
and every template rendered in both languages from the contract's examples."""

import copy
import email
import re
from datetime import UTC, datetime, time, timedelta
from email import policy
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest

from contracts import CATALOG
from contracts.examples import (
    ADVISOR,
    APPOINTMENT,
    ICBC,
    PROVIDER,
    RETURNEE,
    example,
    example_event,
)
from contracts.schemas.notify import EVENT_TYPE_PATTERN
from services.notify.channels import SmtpMailer, SmtpSettings
from services.notify.domain import (
    TEMPLATES,
    Appointment,
    Intent,
    Preferences,
    Recipient,
    RetryPolicy,
    activity_reminder,
    decide,
    merge_matches,
    plan,
    reminder,
    reminder_at,
    reminder_timely,
    reminder_trigger,
    sign,
    signature_valid,
)
from services.notify.rendering import render


class FakeDirectory:
    def __init__(self, *people: Recipient):
        self.people = {p.id: p for p in people}
        self.resources = {str(example("resource.published").data["resource_id"]): "FX hedging"}
        self.organizations = {ICBC: "ICBC Changning"}

    def recipient(self, recipient_id):
        return self.people.get(str(recipient_id)) if recipient_id else None

    def staff_of(self, organization_id, role):
        return [
            p
            for p in self.people.values()
            if p.kind == "staff"
            and p.role == role
            and (organization_id is None or p.organization_id == str(organization_id))
        ]

    def resource_titles(self, resource_ids):
        return {str(i): self.resources[str(i)] for i in resource_ids if str(i) in self.resources}

    def organization_names(self, organization_ids):
        found = [str(i) for i in organization_ids]
        return {i: self.organizations[i] for i in found if i in self.organizations}

    def policy_titles(self, codes):
        return {
            "national-startup-support": {
                "zh-CN": "留学人员回国创业启动支持计划",
                "en": "Start-up Support",
            }
        }

    def activity(self, activity_id):
        """Every activity is the example's exchange session."""
        published = CATALOG.check(example_event(CATALOG.get("activity.published"))).data
        return {**published, "id": str(activity_id)}

    def activity_registrants(self, activity_id):
        return [RETURNEE]


LI_WEI = Recipient(RETURNEE, "returnee", "李伟", "li.wei@example.com", "+86 138 0013 8000")
ZHANG = Recipient(ADVISOR, "staff", "Zhang Min", "zhang@example.cn", locale="en", role="advisor")
CHEN = Recipient(
    PROVIDER, "staff", "陈静", "chen@example.cn", role="provider", organization_id=ICBC
)
ICBC_MAILBOX = Recipient(ICBC, "organization", "ICBC Changning", "returnees@icbc.example.cn")
DIRECTORY = FakeDirectory(LI_WEI, ZHANG, CHEN, ICBC_MAILBOX)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def loaded(type_):
    """The example event as a handler receives it: data loaded by the contract's schema."""
    found = example(type_)
    event = CATALOG.create(CATALOG.get(type_).producer, type_, found.data, subject=found.subject)
    return CATALOG.check(event)


def planned(type_, directory=DIRECTORY):
    event = loaded(type_)
    return [(i.recipient.id, i.template, i.context.get("change")) for i in
            plan(event.type, event.data, directory)]  # fmt: skip


def test_each_event_reaches_the_people_it_concerns():
    assert planned("returnee.registered") == [(RETURNEE, "welcome", None)]
    assert planned("matches.proposed") == [(RETURNEE, "matches_found", None)]
    assert planned("eligibility.assessed") == [(RETURNEE, "policies_eligible", None)]
    assert planned("consultation.requested") == [(RETURNEE, "consultation_update", "requested")]
    assert planned("consultation.assigned") == [
        (RETURNEE, "consultation_update", "assigned"),
        (ADVISOR, "consultation_update", "assigned_to_you"),
    ]
    assert planned("consultation.answered") == [(RETURNEE, "consultation_update", "answered")]
    # No advisor holds it: every advisor hears of the breach.
    assert planned("consultation.sla_breached") == [
        (ADVISOR, "consultation_update", "sla_breached")
    ]
    assert planned("intention.expressed") == [
        (PROVIDER, "intention_update", "expressed"),
        (ICBC, "intention_update", "expressed"),
    ]
    assert planned("intention.accepted") == [(RETURNEE, "intention_update", "accepted")]
    assert planned("intention.declined") == [(RETURNEE, "intention_update", "declined")]
    assert planned("appointment.booked") == [(RETURNEE, "appointment_confirmation", "booked")]
    assert planned("appointment.cancelled") == [(RETURNEE, "appointment_confirmation", "cancelled")]
    for quiet in (
        "resource.published",
        "policy.published",
        "consultation.rated",
        "returnee.erased",
    ):
        assert planned(quiet) == []


def test_nothing_to_say_means_no_notification():
    event = loaded("matches.proposed")
    assert plan(event.type, {**event.data, "added_resource_ids": []}, DIRECTORY) == []
    event = loaded("eligibility.assessed")
    assert plan(event.type, {**event.data, "newly_eligible": []}, DIRECTORY) == []
    assert planned("returnee.registered", FakeDirectory()) == []  # unknown person


def test_matches_found_names_the_added_resources_with_their_reasons():
    event = loaded("matches.proposed")
    (intent,) = plan(event.type, event.data, DIRECTORY)
    assert intent.context["matches"] == [
        {
            "resource_id": str(event.data["added_resource_ids"][0]),
            "title": "FX hedging",
            "organization": "ICBC Changning",
            "score": 86,
            "reasons": ["满足您的需求：跨境金融", "阶段：已注册", "区域：Changning"],
        }
    ]


def test_match_reasons_follow_the_recipients_language():
    event = loaded("matches.proposed")
    english = FakeDirectory(Recipient(RETURNEE, "returnee", "Li Wei", "l@example.com", locale="en"))
    (en,) = plan(event.type, event.data, english)
    assert en.context["matches"][0]["reasons"] == [
        "serves your need: Cross-border finance",
        "stage: Company registered",
        "district: Changning",
    ]
    (zh,) = plan(event.type, event.data, DIRECTORY)
    email = render(zh.template, zh.recipient.locale, zh.context)
    assert "满足您的需求：跨境金融" in email.text and "serves your need" not in email.html


def test_a_match_reason_without_a_code_is_shown_as_its_producers_detail():
    # An older producer sends only factor and detail; a newer one may send a code we do not know.
    event = loaded("matches.proposed")
    data = copy.deepcopy(event.data)
    reasons = data["matches"][0]["reasons"]
    reasons[0] = {"factor": "need", "detail": "serves your need: cross_border_finance"}
    reasons[1] = {**reasons[1], "code": "stage_soon", "args": {}}
    (intent,) = plan(event.type, data, DIRECTORY)
    assert intent.context["matches"][0]["reasons"] == [
        "serves your need: cross_border_finance",
        "stage: registered",
        "区域：Changning",
    ]


def test_policy_titles_follow_the_recipients_language():
    event = loaded("eligibility.assessed")
    (zh,) = plan(event.type, event.data, DIRECTORY)
    assert zh.context["policies"] == [
        {"code": "national-startup-support", "title": "留学人员回国创业启动支持计划", "tier": "key"}
    ]
    english = FakeDirectory(Recipient(RETURNEE, "returnee", "Li Wei", "l@example.com", locale="en"))
    (en,) = plan(event.type, event.data, english)
    assert en.context["policies"][0]["title"] == "Start-up Support"


def test_appointments_are_shown_in_shanghai_time():
    event = loaded("appointment.booked")
    (intent,) = plan(event.type, event.data, DIRECTORY)
    assert intent.context["starts_at"] == "2026-12-03 14:00"
    assert intent.context["ends_at"] == "14:30"
    assert intent.channels == ("email", "in_app", "sms")


def booked(data) -> Appointment:
    return Appointment(str(data["appointment_id"]), str(data["returnee_id"]), data["starts_at"],
                       data["ends_at"], data["location"])  # fmt: skip


def found_appointment() -> Appointment:
    return booked(loaded("appointment.booked").data)


STARTS = datetime(2026, 12, 3, 14, tzinfo=SHANGHAI)
DAY = timedelta(hours=24)


def test_a_reminder_is_due_the_lead_time_before_the_appointment():
    assert reminder_at(STARTS, STARTS - timedelta(days=5), DAY) == datetime(
        2026, 12, 2, 14, tzinfo=SHANGHAI
    )
    assert reminder_at(STARTS, STARTS - timedelta(days=5), timedelta(hours=2)) == STARTS.replace(
        hour=12
    )


def test_no_reminder_for_an_appointment_booked_inside_the_window():
    # The confirmation just sent says it all; a reminder minutes later would be noise.
    assert reminder_at(STARTS, STARTS - timedelta(hours=3), DAY) is None
    assert reminder_at(STARTS, STARTS - DAY, DAY) is None  # booked at the very moment
    assert reminder_at(STARTS, STARTS - DAY - timedelta(seconds=1), DAY) == STARTS - DAY


def test_a_reminder_reached_after_the_start_is_not_sent():
    appointment = booked(loaded("appointment.booked").data)
    assert appointment.starts_at == STARTS
    assert reminder_timely(appointment, STARTS - timedelta(minutes=1))
    assert not reminder_timely(appointment, STARTS)
    assert not reminder_timely(appointment, STARTS + timedelta(hours=2))


def test_a_reminder_names_the_appointment_in_shanghai_time_on_the_confirmations_channels():
    found = reminder(booked(loaded("appointment.booked").data), LI_WEI)
    assert found.template == "appointment_reminder" and found.recipient == LI_WEI
    assert found.channels == plan("appointment.booked", loaded("appointment.booked").data,
                                  DIRECTORY)[0].channels == ("email", "in_app", "sms")  # fmt: skip
    assert found.context == {
        "name": "李伟",
        "appointment_id": APPOINTMENT,
        "starts_at": "2026-12-03 14:00",
        "ends_at": "14:30",
        "location": "Changning Returnee Entrepreneur Service Station, room 201",
    }
    english = render("appointment_reminder", "en", found.context)
    assert english.subject == "Reminder: your appointment at 2026-12-03 14:00"
    assert "room 201" in english.text and "14:00–14:30" in english.html
    assert render("appointment_reminder", "zh-CN", found.context).subject == (
        "预约提醒：2026-12-03 14:00"
    )


def test_one_reminder_trigger_per_appointment():
    first, again = reminder_trigger(APPOINTMENT), reminder_trigger(APPOINTMENT)
    other = reminder_trigger("7f1f3c3e-7a43-4c1b-9d55-3f0f6a0e2b11")
    assert first == again and first.id != other.id
    assert first.id != APPOINTMENT  # never the id of the booking's own notifications
    # notification.sent / notification.failed carry it as the event type reacted to.
    assert re.match(EVENT_TYPE_PATTERN, first.type)


def test_reminders_are_a_topic_of_their_own():
    found = reminder(found_appointment(), LI_WEI)
    prefs = Preferences(opt_outs=(("sms", "appointment_reminder"),))
    assert {d.channel: d.status for d in decide(found, prefs)} == {
        "email": "queued",
        "in_app": "queued",
        "sms": "suppressed",
    }
    confirmation = plan("appointment.booked", loaded("appointment.booked").data, DIRECTORY)[0]
    assert {d.status for d in decide(confirmation, prefs)} == {"queued"}
    withdrawn = Recipient(RETURNEE, "returnee", "李伟", "l@example.com", "+86 138 0013 8000",
                          notifications_consent=False)  # fmt: skip
    decisions = decide(reminder(found_appointment(), withdrawn), Preferences())
    assert {d.channel: d.status for d in decisions} == {
        "email": "suppressed",
        "in_app": "queued",
        "sms": "suppressed",
    }


def intent(recipient=LI_WEI, template="welcome", channels=("email", "in_app", "sms")):
    return Intent(recipient, template, {"name": recipient.name}, channels)


def test_opt_outs_suppress_by_channel_and_topic_with_wildcards():
    prefs = Preferences(opt_outs=(("email", "welcome"), ("sms", "*")))
    decisions = {d.channel: (d.status, d.reason) for d in decide(intent(), prefs)}
    assert decisions == {
        "email": ("suppressed", "opted out of welcome by email"),
        "in_app": ("queued", None),
        "sms": ("suppressed", "opted out of welcome by sms"),
    }
    other_topic = {d.channel: d.status for d in decide(intent(template="matches_found"), prefs)}
    assert other_topic == {"email": "queued", "in_app": "queued", "sms": "suppressed"}
    everything = Preferences(opt_outs=(("*", "*"),))
    assert {d.status for d in decide(intent(), everything)} == {"suppressed"}


def test_withdrawn_consent_suppresses_messages_sent_out_but_keeps_the_inbox():
    withdrawn = Recipient(
        RETURNEE, "returnee", "李伟", "l@example.com", notifications_consent=False
    )
    decisions = {d.channel: (d.status, d.reason) for d in decide(intent(withdrawn), Preferences())}
    assert decisions == {
        "email": ("suppressed", "no consent to notifications"),
        "in_app": ("queued", None),
    }  # no phone: no SMS row at all


def test_organizations_are_reached_by_their_mailbox_only():
    decisions = decide(intent(ICBC_MAILBOX, "intention_update"), Preferences())
    assert [(d.channel, d.address) for d in decisions] == [("email", "returnees@icbc.example.cn")]


def shanghai(hour, minute=0, day=28):
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("start", "end", "now", "until"),
    [
        (time(22), time(7), shanghai(23, 30), shanghai(7, day=29)),  # across midnight, evening
        (time(22), time(7), shanghai(3), shanghai(7)),  # across midnight, small hours
        (time(22), time(7), shanghai(7), None),  # the end is no longer quiet
        (time(22), time(7), shanghai(12), None),
        (time(12), time(14), shanghai(13, 15), shanghai(14)),  # a lunch break
        (time(12), time(14), shanghai(14, 1), None),
        (time(9), time(9), shanghai(9), None),  # empty window
    ],
)
def test_quiet_hours_say_until_when_to_wait(start, end, now, until):
    prefs = Preferences(quiet_start=start, quiet_end=end)
    assert prefs.quiet_until(now) == until


def test_quiet_hours_are_read_in_the_recipients_zone():
    london = Preferences(quiet_start=time(22), quiet_end=time(7), timezone="Europe/London")
    # 06:00 in Shanghai is 22:00 in London (winter): quiet there until 07:00 London.
    assert london.quiet_until(shanghai(6)) == datetime(2026, 11, 28, 7, tzinfo=UTC)
    assert Preferences().quiet_until(shanghai(3)) is None


def test_retries_back_off_exponentially_up_to_a_cap():
    policy = RetryPolicy(max_attempts=5, base_delay=2, max_delay=20)
    assert [policy.delay(n) for n in range(1, 6)] == [2, 4, 8, 16, 20]
    assert not policy.exhausted(4) and policy.exhausted(5)


def test_a_digest_keeps_every_resource_once_best_first():
    lead = {"name": "李伟", "matches": [{"resource_id": "a", "score": 60, "title": "A"}]}
    later = {
        "name": "李伟",
        "matches": [
            {"resource_id": "b", "score": 90, "title": "B"},
            {"resource_id": "a", "score": 70, "title": "A2"},
        ],
    }
    merged = merge_matches(lead, later)
    assert [(m["resource_id"], m["title"]) for m in merged["matches"]] == [("b", "B"), ("a", "A2")]


def test_webhook_signatures_bind_secret_timestamp_and_body():
    body = b'{"id":"1"}'
    signature = sign("s3cret-s3cret-s3cret", 1700000000, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert signature_valid("s3cret-s3cret-s3cret", 1700000000, body, signature)
    assert not signature_valid("s3cret-s3cret-s3cret", 1700000001, body, signature)
    assert not signature_valid("s3cret-s3cret-s3cret", 1700000000, body + b" ", signature)
    assert not signature_valid("another-secret-here!", 1700000000, body, signature)


EXAMPLE_FOR = {
    "welcome": ["returnee.registered"],
    "matches_found": ["matches.proposed"],
    "policies_eligible": ["eligibility.assessed"],
    "consultation_update": [
        "consultation.requested",
        "consultation.assigned",
        "consultation.answered",
        "consultation.waiting_on_returnee",
        "consultation.sla_breached",
    ],
    "intention_update": ["intention.expressed", "intention.accepted", "intention.declined"],
    "appointment_confirmation": ["appointment.booked", "appointment.cancelled"],
    # Not planned from an event: the reminder timer makes it from the booked appointment.
    "appointment_reminder": ["appointment.booked"],
    "activity_invitation": ["invitation.issued"],
    "registration_confirmed": ["registration.confirmed"],
    "waitlist_promoted": ["registration.confirmed"],  # promoted: true
    # Not planned from an event: the reminder timer makes it from the activity kept.
    "activity_reminder": ["activity.published"],
    "activity_cancelled": ["activity.cancelled"],
    "activity_registrations": ["registration.confirmed", "registration.waitlisted"],
    "application_update": [
        "application.submitted",
        "application.approved",
        "application.rejected",
        "application.awarded",
        "application.withdrawn",
    ],
}


def test_every_template_has_an_example_event():
    assert set(EXAMPLE_FOR) == set(TEMPLATES)


def intents_for(template):
    for type_ in EXAMPLE_FOR[template]:
        event = loaded(type_)
        if template == "appointment_reminder":
            yield reminder(booked(event.data), LI_WEI)
            continue
        if template == "activity_reminder":
            yield activity_reminder({**event.data, "id": event.data["activity_id"]}, LI_WEI)
            continue
        data = event.data
        if template == "waitlist_promoted":
            data = {**data, "promoted": True}
        if template == "activity_registrations":  # organized by the provider's organization
            data = {**data, "activity": {**data["activity"], "organizer_ids": [ICBC]}}
        yield from (i for i in plan(event.type, data, DIRECTORY) if i.template == template)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_in_both_languages(template, locale):
    found = list(intents_for(template))
    assert found
    for intent in found:
        rendered = render(intent.template, locale, intent.context)
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.text.strip() and "{{" not in rendered.text
        assert f'<html lang="{locale}">' in rendered.html
        if locale == "zh-CN":
            assert "您好" in rendered.text
        else:
            assert "Dear " in rendered.text


# Text as long as the contracts allow, or longer, and in Chinese with no space to fold at.
LONG = {
    "zh-CN": "长宁区海归创业服务站留学人员回国创业启动支持计划",
    "en": "Changning-Returnee-Station-",
}
LONG_FIELDS = {"name": 200, "returnee_name": 200, "title": 300, "resource_title": 300,
               "organization": 200, "location": 200, "message": 2000}  # fmt: skip


def lengthened(value, locale, key=None):
    """`value` (a template context) with every name, title, organization, location and message
    grown to its length above."""
    if isinstance(value, dict):
        return {k: lengthened(v, locale, k) for k, v in value.items()}
    if isinstance(value, list):
        return [lengthened(v, locale) for v in value]
    if key in LONG_FIELDS and isinstance(value, str):
        return (value + LONG[locale] * LONG_FIELDS[key])[: LONG_FIELDS[key]]
    return value


@pytest.mark.parametrize("to", ["li.wei@example.com", "李伟@例子.中国"])
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_email_is_in_crlf_lines_of_at_most_998_octets(template, locale, to):
    # RFC 5321 2.3.8 and 4.5.3.1.6: what a strict server (aiosmtpd, Postfix 3.9) asks for; the
    # SMTPUTF8 path for an address that is not ASCII, the compat32 one for the others.
    mailer = SmtpMailer(
        SmtpSettings("localhost", 25, "长宁区海归创业服务站 <noreply@station.example>")
    )
    for intent in intents_for(template):
        for context in (intent.context, lengthened(intent.context, locale)):
            rendered = render(intent.template, locale, context)
            long = context is not intent.context
            # Longer than a line may be, in one word (Chinese) or in many (English).
            subject = rendered.subject * (1 + 1000 // len(rendered.subject.encode()) if long else 1)
            name = context["name"]
            mail = mailer.message(to, name, subject, rendered.text, rendered.html, "id-1")

            assert mail.data.endswith(b"\r\n")
            lines = mail.data.split(b"\r\n")
            assert not [line for line in lines if b"\n" in line or b"\r" in line]
            assert max(len(line) for line in lines) <= 998
            if long:
                assert len(name) == 200 and len(subject.encode()) > 998
            parsed = email.message_from_bytes(mail.data, policy=policy.default)
            assert parsed["Subject"] == subject
            assert str(make_header(decode_header(parsed["To"]))).replace(" ", "") == (
                f"{name}<{to}>".replace(" ", "").replace('"', "")
            )
            assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
            html = parsed.get_body(("html",)).get_content().replace("\r\n", "\n")
            assert html.strip() == rendered.html.strip()


def test_html_is_escaped_and_text_is_not():
    context = {"name": "<script>x</script>", "change": "accepted", "resource_title": "A & B",
               "organization": "ICBC", "message": "<b>hi</b>"}  # fmt: skip
    rendered = render("intention_update", "en", context)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "&lt;b&gt;hi&lt;/b&gt;" in rendered.html
    assert "<b>hi</b>" in rendered.text and "A & B" in rendered.subject


def test_subjects_read_naturally():
    one = {"name": "Li", "matches": [{"resource_id": "a", "title": "A", "organization": "",
                                      "score": 50, "reasons": []}]}  # fmt: skip
    two = {"name": "Li", "matches": one["matches"] * 2}
    assert render("matches_found", "en", one).subject == "1 new resource matches your needs"
    assert render("matches_found", "en", two).subject == "2 new resources match your needs"
    assert render("matches_found", "zh-CN", two).subject == "为您匹配到 2 项新资源"
    assert render("welcome", "fr", {"name": "x"}).subject == "欢迎加入长宁区海归创业服务平台"


def test_the_seeded_topics_are_the_templates():
    from services.notify.seed import TOPICS

    assert [t[0] for t in TOPICS] == list(TEMPLATES)
