"""The operator's `station` command against the whole platform, every service its own process:
import from CSV in each encoding and XLSX, headers in English or Chinese, invalid rows of every
kind reported by row and column in both languages, re-import and resume creating nothing twice,
imported returnees invited to set a password with their consents recorded as imported, exports
limited by role and consent, status and dead letters."""

import csv
import json
import stat
import uuid

import openpyxl
import pytest

from chassis import sheets
from station import imports
from station.cli import main as station
from tests.platform import ADMIN
from tests.support import wait_until

ADVISOR_PASSWORD = "Station-advisor-2026"


@pytest.fixture(autouse=True)
def environment(platform, tmp_path, monkeypatch):
    """station pointed at the test platform, its config directory the test's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for service in platform.ports:
        monkeypatch.setenv(f"{service.upper()}_URL", platform.url(service))
        monkeypatch.setenv(f"{service.upper()}_AMQP_URI", platform.amqp_uri)
    monkeypatch.setenv("STATION_EMAIL", ADMIN[0])
    monkeypatch.setenv("STATION_PASSWORD", ADMIN[1])


def row(**changes) -> dict:
    """A returnee's row by English header, as a station's spreadsheet holds it."""
    return {
        **sheets.EXAMPLES["returnees"],
        "email": f"imported.{uuid.uuid4().hex[:10]}@example.com",
        **changes,
    }


def chinese(record: dict, document: dict, kind: str = "returnees") -> dict:
    labels = {c.name: c.label for c in sheets.columns(document, kind)}
    return {labels[k]: v for k, v in record.items()}


def write_csv(path, records: list[dict], encoding: str):
    headers = list(dict.fromkeys(h for r in records for h in r))
    with path.open("w", newline="", encoding=encoding) as file:
        writer = csv.writer(file)
        writer.writerow(headers)
        for record in records:
            writer.writerow(["" if record.get(h) is None else record.get(h) for h in headers])
    return path


def write_xlsx(path, records: list[dict]):
    headers = list(dict.fromkeys(h for r in records for h in r))
    workbook = openpyxl.Workbook()
    workbook.active.append(headers)
    for record in records:
        workbook.active.append([record.get(h) for h in headers])
    workbook.save(path)
    return path


def returnee_by_email(platform, admin, email) -> dict:
    page = platform.call("GET", "accounts", "/returnees?limit=1000", admin).json()
    return next(r for r in page if r["email"] == email)


def test_returnees_import_from_csv_in_each_encoding_and_xlsx_in_either_language(
    platform, tmp_path, capsys
):
    document = imports.openapi("returnees")
    admin = platform.admin()
    files = []
    for encoding in ("utf-8", "utf-8-sig", "gb18030"):
        for language in ("en", "zh"):
            records = [row(), row(name="Wang Fang", locale="en")]
            shown = records if language == "en" else [chinese(r, document) for r in records]
            path = write_csv(tmp_path / f"{encoding}-{language}.csv", shown, encoding)
            files.append((path, records))
    for language in ("en", "zh"):
        records = [row(company_registered_capital_cny=500000, consents_matching=True)]
        shown = records if language == "en" else [chinese(r, document) for r in records]
        files.append((write_xlsx(tmp_path / f"returnees-{language}.xlsx", shown), records))
    for path, records in files:
        assert station(["import", "returnees", str(path), "--quiet"]) == 0, path.name
        assert f"returnees: {len(records)} created, 0 already there, 0 invalid" in (
            capsys.readouterr().out
        )
        assert not path.with_name(path.name + ".errors.csv").exists()
        for record in records:
            stored = returnee_by_email(platform, admin, record["email"])
            assert stored["name"] == record["name"]
            assert stored["company"]["name"] == "上海维康生物科技有限公司"
            assert stored["education"][0]["institution"] == "Imperial College London"
            assert stored["needs"] == ["financing", "office_space"]
    # The sign-in is kept for the user alone.
    token_file = tmp_path / "config" / "returnee-station" / "token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_the_template_has_both_header_rows_allowed_values_and_an_example_that_imports(
    platform, tmp_path, capsys
):
    template = tmp_path / "template.xlsx"
    assert station(["import", "--template", "returnees", str(template)]) == 0
    workbook = openpyxl.load_workbook(template)
    main, allowed, example = workbook.worksheets
    english = [c.value for c in main[1]]
    assert {"name", "email", "company_name", "education_1_institution", "consent_reference"} <= (
        set(english)
    )
    assert "password" not in english
    assert [c.value for c in main[2]][english.index("email")] == "邮箱"
    values = {r[0].value: r[3].value for r in allowed.iter_rows(min_row=2)}
    assert "biotech" in values["industry"].split(";")
    # The example row, copied under the template's two header rows, imports as it is.
    email = f"example.{uuid.uuid4().hex[:8]}@example.com"
    example_row = [c.value for c in example[3]]
    example_row[english.index("email")] = email
    main.append(example_row)
    workbook.save(template)
    assert station(["import", "returnees", str(template), "--quiet"]) == 0
    assert "1 created" in capsys.readouterr().out


def test_invalid_rows_of_every_kind_are_reported_and_the_valid_ones_imported(
    platform, tmp_path, capsys
):
    admin = platform.admin()
    good = row()
    records = [
        row(email="not-an-email"),  # 2: a field's format
        row(industry="mining"),  # 3: not an allowed value
        row(name=None),  # 4: a required field missing
        row(birth_date="31/02/1990"),  # 5: not a date
        row(birth_date="2090-01-01"),  # 6: a rule (not in the future)
        row(education_1_degree="diploma"),  # 7: a nested entry's field
        row(needs="financing;flying"),  # 8: a list's value
        row(company_registered_capital_cny="lots"),  # 9: not a number
        row(email=ADMIN[0]),  # 10: a staff member's address
        good,  # 11
    ]
    path = write_csv(tmp_path / "mixed.csv", records, "utf-8")
    assert station(["import", "returnees", str(path)]) == 3
    shown = capsys.readouterr()
    assert "1 created, 0 already there, 9 invalid" in shown.out
    assert "row 3 industry: 必须是以下之一" in shown.out
    with path.with_name("mixed.csv.errors.csv").open(encoding="utf-8-sig") as file:
        errors = list(csv.DictReader(file))
    by_row = {}
    for error in errors:
        by_row.setdefault(int(error["row"]), set()).add(error["column"])
        assert error["message_zh"] and error["message_en"]
    assert by_row == {
        2: {"email"},
        3: {"industry"},
        4: {"name"},
        5: {"birth_date"},
        6: {"birth_date", "education_1_start_date"},  # after the birth date, too
        7: {"education_1_degree"},
        8: {"needs"},
        9: {"company_registered_capital_cny"},
        10: {"email"},
    }
    future = next(e for e in errors if e["row"] == "6")
    assert (future["message_en"], future["message_zh"]) == (
        "Must not be in the future.",
        "不能是将来的日期。",
    )
    assert returnee_by_email(platform, admin, good["email"])["name"] == good["name"]


def test_imported_returnees_are_invited_with_consents_recorded_as_imported(platform, tmp_path):
    admin = platform.admin()
    with_reference = row(consent_reference="Form 2026-117")
    without = row(consent_reference=None)
    path = write_csv(tmp_path / "consents.csv", [with_reference, without], "utf-8")
    assert station(["import", "returnees", str(path), "--quiet"]) == 0
    first = returnee_by_email(platform, admin, with_reference["email"])
    consents = platform.call("GET", "accounts", f"/returnees/{first['id']}/consents", admin)
    history = consents.json()["history"]
    assert {(h["purpose"], h["granted"], h["source"], h["evidence"]) for h in history} == {
        ("matching", True, "import", "Form 2026-117"),
        ("notifications", True, "import", "Form 2026-117"),
        ("share_with_partners", False, "import", "Form 2026-117"),
    }
    second = returnee_by_email(platform, admin, without["email"])
    assert not any(second["consents"].values())
    # The invitation sets a password; the returnee signs in with it.
    # notify may still be sending the invitations of the module's earlier imports.
    token = platform.link_token(with_reference["email"], "/set-password", timeout=240)
    confirmed = platform.call("POST", "accounts", "/auth/password-reset/confirm",
                              json={"token": token, "password": "Imported-2026x"})  # fmt: skip
    assert confirmed.status_code == 204, confirmed.text
    platform.token(with_reference["email"], "Imported-2026x")
    # Matching took them in with their consent: matches are proposed.
    me = platform.token(with_reference["email"], "Imported-2026x")
    wait_until(
        lambda: platform.call("GET", "matching", f"/returnees/{first['id']}/matches", me).json(),
        30,
        0.2,
        "matches for the imported returnee",
    )


def test_reimport_creates_nothing_twice_and_an_interrupted_import_resumes(
    platform, tmp_path, capsys
):
    records = [row() for _ in range(250)]
    path = write_xlsx(tmp_path / "many.xlsx", records)
    assert station(["import", "returnees", str(path), "--quiet"]) == 0
    assert "250 created" in capsys.readouterr().out
    assert station(["import", "returnees", str(path), "--quiet"]) == 0
    assert "0 created, 250 already there" in capsys.readouterr().out
    # Interrupted after its first batch: the progress file says so; the rest follows.
    more = write_xlsx(tmp_path / "more.xlsx", [row() for _ in range(250)])
    kept = imports._resumed(more.with_name("more.xlsx.progress.json"), "", "returnees")
    digest = __import__("hashlib").sha256(more.read_bytes()).hexdigest()
    kept.update(file_sha256=digest, done=100, created=100)
    more.with_name("more.xlsx.progress.json").write_text(json.dumps(kept))
    assert station(["import", "returnees", str(more)]) == 0
    out = capsys.readouterr().out
    assert "resuming more.xlsx after row 101 (100 rows done)" in out
    assert "returnees: 250 created" in out  # 100 counted before, 150 now
    assert not more.with_name("more.xlsx.progress.json").exists()
    admin = platform.admin()
    page = platform.call("GET", "accounts", "/returnees?limit=1000", admin).json()
    emails = {r["email"] for r in page}
    assert [r["email"] for r in records if r["email"] not in emails] == []


def test_organizations_by_name_then_their_resources_by_organization_and_title(
    platform, tmp_path, capsys
):
    name = f"长宁科创园 {uuid.uuid4().hex[:6]}"
    organizations = write_csv(
        tmp_path / "orgs.csv",
        [{**sheets.EXAMPLES["organizations"], "name": name}, {"name": "x", "kind": "castle"}],
        "gb18030",
    )
    assert station(["import", "organizations", str(organizations), "--quiet"]) == 3
    assert "1 created, 0 already there, 1 invalid" in capsys.readouterr().out
    assert station(["import", "organizations", str(organizations), "--quiet"]) == 3
    assert "0 created, 1 already there, 1 invalid" in capsys.readouterr().out
    resource = {**sheets.EXAMPLES["resources"], "organization_name": name}
    resources = write_csv(
        tmp_path / "resources.csv",
        [resource, {**resource, "organization_name": "No such park"}],
        "utf-8-sig",
    )
    # matching knows the organization once its event arrives.
    wait_until(
        lambda: (
            station(["import", "resources", str(resources), "--quiet"]) == 3
            and "1 created" in capsys.readouterr().out
        ),
        30,
        0.5,
        "the resource imported",
    )
    assert station(["import", "resources", str(resources), "--quiet"]) == 3
    assert "0 created, 1 already there, 1 invalid" in capsys.readouterr().out
    with resources.with_name("resources.csv.errors.csv").open(encoding="utf-8-sig") as file:
        (error,) = list(csv.DictReader(file))
    assert (error["row"], error["column"], error["message_zh"]) == (
        "3",
        "organization_name",
        "未知的机构。",
    )


def test_exports_are_limited_by_role_and_consent(platform, tmp_path, monkeypatch, capsys):
    admin = platform.admin()
    sharing = row(consent_reference="Form 9", consents_share_with_partners="是")
    private = row(consent_reference="Form 10", consents_share_with_partners="否")
    path = write_csv(tmp_path / "export.csv", [sharing, private], "utf-8")
    assert station(["import", "returnees", str(path), "--quiet"]) == 0
    exported = tmp_path / "returnees.xlsx"
    assert station(["export", "returnees", str(exported)]) == 0
    rows = exported_rows(exported)
    assert not [h for h in rows[0] if h.startswith("id_document")]  # has_id_document alone
    by_name = {r["email"]: r for r in rows[1:] if r.get("email")}
    assert sharing["email"] in by_name and private["email"] not in by_name
    assert any(r["birth_date"] for r in rows[1:])
    # An advisor gets no contacts and no birth dates at all.
    advisor_email = f"advisor.{uuid.uuid4().hex[:8]}@station.example"
    staff = {"email": advisor_email, "name": "顾问", "role": "advisor"}
    assert platform.call("POST", "accounts", "/staff", admin, json=staff).status_code == 201
    # notify may still be sending the invitations of the module's earlier imports.
    token = platform.link_token(advisor_email, "/set-password", timeout=240)
    confirmed = platform.call("POST", "accounts", "/auth/password-reset/confirm",
                              json={"token": token, "password": ADVISOR_PASSWORD})  # fmt: skip
    assert confirmed.status_code == 204, confirmed.text
    monkeypatch.setenv("STATION_EMAIL", advisor_email)
    monkeypatch.setenv("STATION_PASSWORD", ADVISOR_PASSWORD)
    assert station(["export", "returnees", str(exported)]) == 0
    headers = exported_rows(exported)[0]
    assert not {"email", "phone", "birth_date"} & set(headers)
    assert {"name", "industry", "consents_share_with_partners"} <= set(headers)
    for kind in ("organizations", "resources", "intentions"):
        assert station(["export", kind, str(tmp_path / f"{kind}.xlsx")]) == 0, kind
    capsys.readouterr()


def exported_rows(path) -> list:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    values = [[c for c in r] for r in sheet.iter_rows(values_only=True)]
    headers = values[0]
    return [headers, *[dict(zip(headers, r, strict=True)) for r in values[2:]]]


def test_status_and_dead_letters(platform, capsys):
    assert station(["status", "--json"]) == 0
    found = {s["service"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(found) == {"accounts", "consulting", "matching", "notify", "activities",
                          "insights"}  # fmt: skip
    assert all(s["ready"] and s["dead_letters"] == 0 for s in found.values())
    assert all(isinstance(s["outbox_pending"], int) for s in found.values())
    assert station(["dead-letters", "list", "matching"]) == 0
    assert "0 dead letter(s) in matching.dead-letters" in capsys.readouterr().err
