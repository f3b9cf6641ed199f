"""station's reading and writing of spreadsheets, against the services' own OpenAPI documents
(built here, no I/O): headers in either language, numbered entries, lists, each encoding, the
template's sheets, and errors named by the file's own column."""

import csv
import io

import openpyxl
import pytest

from chassis import sheets
from chassis.openapi import openapi_document
from services.accounts.service import AccountsService
from services.matching.service import MatchingService
from station import exports

ACCOUNTS = openapi_document(AccountsService)
MATCHING = openapi_document(MatchingService)


def document(kind):
    return MATCHING if kind == "resources" else ACCOUNTS


def labels(kind="returnees"):
    return {c.name: c.label for c in sheets.columns(document(kind), kind)}


def test_columns_are_the_row_schemas_fields_flattened():
    names = [c.name for c in sheets.columns(ACCOUNTS, "returnees")]
    assert {
        "name", "email", "company_name", "consents_matching", "consent_reference",
        "education_1_institution", "education_3_end_date", "id_document_number",
    } <= set(names)  # fmt: skip
    assert "password" not in names
    industry = next(c for c in sheets.columns(ACCOUNTS, "returnees") if c.name == "industry")
    assert "biotech" in industry.values and industry.required
    needs = next(c for c in sheets.columns(ACCOUNTS, "returnees") if c.name == "needs")
    assert needs.type == "list" and "financing" in needs.values
    resources = [c.name for c in sheets.columns(MATCHING, "resources")]
    assert {"title", "organization_name", "needs_served"} <= set(resources)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_row_is_nested_with_entries_lists_and_booleans_in_either_language(language):
    record = {
        "name": "李伟",
        "education_1_institution": "Fudan",
        "education_2_institution": "Imperial College London",
        "education_2_start_date": "2015-09-28",
        "company_name": "维康",
        "needs": "financing；office_space; ",
        "consents_matching": "是",
        "consents_notifications": "否",
        "phone": "",
    }
    if language == "zh":
        names = labels()
        record = {
            (names.get(k) or names[k.replace("_2_", "_1_")].replace("1_", "2_")): v
            for k, v in record.items()
        }
    layout = sheets.Layout(ACCOUNTS, "returnees", list(record))
    assert layout.unknown == []
    assert layout.row(list(record.values())) == {
        "name": "李伟",
        "education": [
            {"institution": "Fudan"},
            {"institution": "Imperial College London", "start_date": "2015-09-28"},
        ],
        "company": {"name": "维康"},
        "needs": ["financing", "office_space"],
        "consents": {"matching": "true", "notifications": "false"},
    }


def test_unknown_headers_are_named_and_errors_are_reported_by_the_files_own_column():
    names = labels()
    headers = [names["email"], "education_2_degree", "needs", "favourite colour"]
    layout = sheets.Layout(ACCOUNTS, "returnees", headers)
    assert layout.unknown == ["favourite colour"]
    assert layout.column_of("email") == "邮箱"
    assert layout.column_of("education.1.degree") == "education_2_degree"
    assert layout.column_of("needs.1") == "needs"
    assert layout.column_of("company.name") == "company_name"  # not in the file: its name


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_is_read_in_each_encoding(tmp_path, encoding):
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding=encoding) as file:
        writer = csv.writer(file)
        writer.writerow(["姓名", "邮箱"])
        writer.writerow(["李伟", "li@example.com"])
        writer.writerow(["", ""])  # an empty row is no row
        writer.writerow(["王芳", "wang@example.com"])
    headers, rows = sheets.read_rows(path)
    assert headers == ["姓名", "邮箱"]
    assert rows == [(2, ["李伟", "li@example.com"]), (4, ["王芳", "wang@example.com"])]


def test_text_in_no_known_encoding_is_refused(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\xff")
    with pytest.raises(ValueError):
        sheets.read_rows(path)


@pytest.mark.parametrize("kind", list(sheets.KINDS))
def test_the_template_has_both_header_rows_allowed_values_and_an_example(tmp_path, kind):
    path = tmp_path / f"{kind}.xlsx"
    sheets.write_template(document(kind), kind, path)
    main, allowed, example = openpyxl.load_workbook(path).worksheets
    english, chinese = [c.value for c in main[1]], [c.value for c in main[2]]
    layout = sheets.Layout(document(kind), kind, english)
    assert layout.unknown == [] and layout.is_header_row(chinese)
    assert sheets.Layout(document(kind), kind, chinese).unknown == []
    assert main.max_row == 2  # nothing to import by mistake
    assert [r[0].value for r in allowed.iter_rows(min_row=2)] == english
    row = layout.row([c.value for c in example[3]])
    assert row and set(row) <= {p.path[0] for p in sheets.columns(document(kind), kind)}


def test_an_xlsx_dates_and_numbers_are_read_as_the_api_takes_them(tmp_path):
    from datetime import datetime

    path = tmp_path / "rows.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["birth_date", "company_registered_capital_cny", "education_1_qs_rank"])
    workbook.active.append([datetime(1992, 5, 14), 500000, 39.0])
    workbook.save(path)
    headers, rows = sheets.read_rows(path)
    layout = sheets.Layout(ACCOUNTS, "returnees", headers)
    assert layout.row(rows[0][1]) == {
        "birth_date": "1992-05-14",
        "company": {"registered_capital_cny": 500000},
        "education": [{"qs_rank": 39}],
    }


def test_an_export_takes_contacts_out_only_for_admins_and_with_consent():
    record = {"name": "李伟", "email": "li@example.com", "phone": "+86 1", "birth_date": "1992",
              "consents": {"share_with_partners": True}, "consent_times": {}}  # fmt: skip
    assert set(exports.allowed("returnees", "admin", record)) == {
        "name", "email", "phone", "birth_date", "consents"
    }  # fmt: skip
    private = {**record, "consents": {"share_with_partners": False}}
    assert set(exports.allowed("returnees", "admin", private)) == {"name", "birth_date", "consents"}
    assert set(exports.allowed("returnees", "advisor", record)) == {"name", "consents"}
    assert exports.flatten({"a": {"b": 1}, "e": [{"x": 1}, {"x": 2}], "n": ["p", "q"]}) == {
        "a_b": 1, "e_1_x": 1, "e_2_x": 2, "n": "p;q"
    }  # fmt: skip


def test_an_upload_is_read_cut_into_batches_and_its_invalid_rows_written_as_station_writes():
    out = io.BytesIO()
    workbook = openpyxl.Workbook()
    workbook.active.append(["name", "kind"])
    for n in range(sheets.BATCH_ROWS + 1):
        workbook.active.append([f"Park {n}", "industrial_park"])
    workbook.save(out)
    headers, rows = sheets.read_table("organizations.xlsx", out.getvalue())
    layout = sheets.Layout(ACCOUNTS, "organizations", headers)
    batches = list(sheets.batches(rows, layout))
    assert [len(b) for b in batches] == [sheets.BATCH_ROWS, 1]
    assert batches[1] == [(sheets.BATCH_ROWS + 2, {"name": f"Park {sheets.BATCH_ROWS}",
                                                  "kind": "industrial_park"})]  # fmt: skip
    outcome = {"results": [{"row": 0, "status": "invalid", "errors": [
        {"field": "kind", "message_zh": "无效", "message_en": "Not valid."}]}]}  # fmt: skip
    lines = sheets.error_lines(batches[1], outcome, layout)
    assert lines == [[sheets.BATCH_ROWS + 2, "kind", "kind", "无效", "Not valid."]]
    written = sheets.errors_csv(lines)
    assert written.startswith("\ufeff".encode())  # for Excel
    assert list(csv.reader(io.StringIO(written.decode("utf-8-sig")))) == [
        sheets.ERROR_COLUMNS,
        [str(sheets.BATCH_ROWS + 2), "kind", "kind", "无效", "Not valid."],
    ]
    for name, data in (("notes.txt", b"x"), ("broken.xlsx", b"not a zip")):
        with pytest.raises(ValueError):
            sheets.read_table(name, data)
