"""`make demo` prints the emails of either mail sink: ours (`make run`) or Mailpit (compose)."""

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
