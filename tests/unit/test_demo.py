"""`make demo` prints the emails of either mail sink (ours, `make run`, or Mailpit, compose),
and the day's figures as a table."""

from deploy.demo import as_mails


def test_the_local_sinks_list_is_read_as_it_is():
    listing = [
        {"to": "李伟 <liwei@example.com>", "from": "Station <noreply@station.example>",
         "subject": "欢迎", "date": "Mon, 02 Mar 2026 08:00:00 +0000", "text": "您好"},
        {"to": "emma@example.com", "from": "Station <noreply@station.example>",
         "subject": "Welcome", "date": "Mon, 02 Mar 2026 08:00:01 +0000", "text": "Hello"},
    ]  # fmt: skip

    assert as_mails(listing) == [
        {"to": "李伟 <liwei@example.com>", "subject": "欢迎"},
        {"to": "emma@example.com", "subject": "Welcome"},
    ]


def test_mailpits_list_is_read_oldest_first_with_its_addresses_written_out():
    listing = {
        "total": 2,
        "unread": 2,
        "messages_count": 2,
        "start": 0,
        "tags": [],
        "messages": [
            {"ID": "b", "From": {"Name": "Station", "Address": "noreply@station.example"},
             "To": [{"Name": "", "Address": "emma@example.com"}], "Cc": [], "Bcc": [],
             "Subject": "Welcome", "Created": "2026-03-02T08:00:01Z", "Snippet": "Hello"},
            {"ID": "a", "From": {"Name": "Station", "Address": "noreply@station.example"},
             "To": [{"Name": "李伟", "Address": "liwei@example.com"},
                    {"Name": "", "Address": "station@example.com"}], "Cc": [], "Bcc": [],
             "Subject": "欢迎", "Created": "2026-03-02T08:00:00Z", "Snippet": "您好"},
        ],
    }  # fmt: skip

    assert as_mails(listing) == [
        {"to": "李伟 <liwei@example.com>, station@example.com", "subject": "欢迎"},
        {"to": "emma@example.com", "subject": "Welcome"},
    ]


def test_an_answer_of_neither_shape_is_no_list_of_emails():
    assert as_mails({"error": "not found"}) is None


def test_the_figures_table_lines_up_chinese_labels_and_says_what_is_not_counted():
    from deploy.demo import _columns, figures_table

    figures = {
        "from": "2026-11-02", "to": "2026-12-01", "registrations": 3, "returnees_active": 3,
        "eligible_by_policy": {"pujiang-talent": 2, "national-startup": 1},
        "matches_proposed": 7, "intentions": {"expressed": 2, "accepted": 1, "declined": 0},
        "consultations": {"requested": 1, "answered": 1, "first_response_within_sla_pct": None},
        "appointments": {"booked": 0}, "by_industry": {"biotech": 2, "ai": 1},
        "applications": {"submitted": 2, "awarded": 1, "awarded_amount_cny": 100000},
        "activities": {"held": 1, "registrations": 4, "attended": 3}, "agreements_signed": 1,
        "counted_from": {"accounts": "2026-12-01T02:00:00+00:00", "activities": None},
        "complete": False,
    }  # fmt: skip
    lines = figures_table(figures)
    assert lines[0] == (
        "2026-11-02 – 2026-12-01 (Asia/Shanghai days), counted from 2026-12-01 10:00"
    )
    rows = lines[1:13]
    assert len({_columns(line) for line in rows}) == 1  # one column edge for every row
    assert rows[2].endswith(" 3") and rows[4].endswith("2 / 1") and rows[6].endswith("—")
    assert rows[8].endswith("2 / 1") and rows[9].endswith("100,000")
    assert rows[10].endswith("1 / 3") and rows[11].endswith(" 1")
    assert lines[13].endswith("biotech 2, ai 1") and "incomplete" in lines[14]


def test_the_funnel_counts_each_returnee_once_per_stage_from_events_in_any_order():
    from contracts.examples import EXAMPLES
    from deploy.demo import funnel

    def body(type_, **changes):
        return {"type": type_, "data": {**EXAMPLES[(type_, 1)].data, **changes}}

    grant = EXAMPLES[("application.submitted", 1)].data
    events = [
        body("application.awarded"),
        body("consultation.requested", policy_id=grant["policy_id"]),
        body("eligibility.assessed",
             eligible=[{"policy_id": grant["policy_id"], "code": grant["code"], "tier": "b"}],
             newly_eligible=[grant["code"]]),
        body("eligibility.assessed", returnee_id="someone-else", eligible=[],
             newly_eligible=[grant["code"]]),
        body("application.submitted"),
        body("application.submitted"),  # delivered twice: still one returnee
        body("application.approved"),
        body("application.awarded"),  # redelivered: counted once, its amount too
        body("consultation.requested", policy_id="a-policy-no-event-names"),
    ]  # fmt: skip
    counted = funnel(events)
    assert counted[grant["code"]] == {
        "newly_eligible": 2,
        "consulted": 1,
        "applied": 1,
        "approved": 1,
        "awarded": 1,
        "awarded_cny": 100000,
    }
    assert set(counted) == {grant["code"]}
