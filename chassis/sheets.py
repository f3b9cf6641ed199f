"""Spreadsheets of rows for the batch imports (`chassis.batches`), as their clients read and
write them: the `station` command and the portal's imports page. CSV (UTF-8, UTF-8 with BOM,
GB18030) and XLSX, headers in English (the API's field names, nested ones joined by `_`:
`company_name`, `education_1_institution`) or Chinese (姓名, 邮箱, …), lists separated by `;`;
the rows cut into batches the services take, and their invalid rows as the errors file's lines.

The columns are those of the batch operation's row schema in the service's OpenAPI document:
what a row may hold is the service's to say, and every rule is checked there, row by row."""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import openpyxl

# What each kind imports into: service, batch path, the row schema's component.
KINDS = {
    "returnees": ("accounts", "/imports/returnees", "ImportedReturnee"),
    "organizations": ("accounts", "/imports/organizations", "OrganizationIn"),
    "resources": ("matching", "/imports/resources", "ImportedResource"),
}
BATCH_ROWS = 100  # the services' most rows per batch (chassis.batches.MAX_ROWS)
BATCH_BYTES = 60_000  # below the services' HTTP_MAX_BODY_BYTES default (64 KiB)
ERROR_COLUMNS = ["row", "column", "field", "message_zh", "message_en"]
EDUCATION_COLUMNS = 3  # education entries a template offers (a file may have more)
LIST_SEPARATOR = re.compile(r"[;；]")
ENCODINGS = ("utf-8-sig", "gb18030")  # UTF-8 with or without BOM, then GB18030 (a superset of GBK)
TRUE_WORDS = {"是", "对", "有", "同意"}
FALSE_WORDS = {"否", "不", "无", "不同意"}

# Chinese labels of fields, by name; a nested field's label is its parent's and its own.
LABELS = {
    "name": "姓名",
    "email": "邮箱",
    "phone": "电话",
    "locale": "语言",
    "birth_date": "出生日期",
    "return_date": "回国日期",
    "has_overseas_job": "有海外工作经历",
    "residence_status": "户籍状态",
    "industry": "行业",
    "startup_stage": "创业阶段",
    "needs": "需求",
    "prior_awards": "已获资助项目",
    "consent_reference": "同意书编号",
    "education": "教育经历",
    "institution": "院校",
    "country": "国家或地区",
    "degree": "学位",
    "field": "专业",
    "start_date": "开始日期",
    "end_date": "结束日期",
    "qs_rank": "QS排名",
    "overseas": "海外",
    "company": "企业",
    "registered_district": "注册区",
    "registration_date": "注册日期",
    "registered_capital_cny": "注册资本（元）",
    "shareholding_pct": "持股比例（%）",
    "is_legal_representative": "是法定代表人",
    "is_largest_shareholder": "是最大股东",
    "vc_raised_cny": "已获风险投资（元）",
    "consents": "同意",
    "matching": "资源匹配",
    "notifications": "接收通知",
    "share_with_partners": "与合作机构共享",
    "id_document": "证件",
    "kind": "类型",
    "number": "号码",
    "district": "区",
    "contact_email": "联系邮箱",
    "title": "标题",
    "organization_id": "机构编号",
    "organization_name": "机构名称",
    "needs_served": "满足的需求",
    "industries": "面向行业",
    "stages": "面向阶段",
    "capacity": "名额",
    "valid_from": "有效期起",
    "valid_until": "有效期止",
    "description": "说明",
}
# Where the top-level `name` is not a person's.
NAME_LABELS = {"organizations": "机构名称", "resources": "名称"}

# One example row per kind, as a station's spreadsheet would have it.
EXAMPLES = {
    "returnees": {
        "name": "李伟",
        "email": "li.wei@example.com",
        "phone": "+86 138 0013 8000",
        "locale": "zh-CN",
        "birth_date": "1992-05-14",
        "return_date": "2021-07-01",
        "industry": "biotech",
        "startup_stage": "registered",
        "needs": "financing;office_space",
        "education_1_institution": "Imperial College London",
        "education_1_country": "GB",
        "education_1_degree": "master",
        "education_1_field": "Bioengineering",
        "education_1_start_date": "2015-09-28",
        "education_1_end_date": "2016-09-30",
        "company_name": "上海维康生物科技有限公司",
        "company_registered_district": "Changning",
        "company_registration_date": "2024-03-18",
        "company_registered_capital_cny": 1000000,
        "company_shareholding_pct": 60,
        "company_is_legal_representative": "是",
        "consents_matching": "是",
        "consents_notifications": "是",
        "consents_share_with_partners": "否",
        "consent_reference": "CN-2026-0117",
    },
    "organizations": {
        "name": "长宁科创园",
        "kind": "industrial_park",
        "district": "Changning",
        "contact_email": "park@example.com",
    },
    "resources": {
        "title": "Office space for start-ups",
        "kind": "office_space",
        "organization_name": "长宁科创园",
        "needs_served": "office_space",
        "industries": "biotech;ai",
        "stages": "idea;registered",
        "capacity": 20,
        "description": "Two years at half rent.",
    },
}


@dataclass
class Column:
    """A leaf of the row schema: its header and where it goes in the row."""

    name: str  # English header
    path: tuple  # ("education", 0, "institution")
    label: str  # Chinese header
    type: str  # string, integer, number, boolean, list
    required: bool = False
    values: list = field(default_factory=list)  # allowed values, when the schema lists them
    description: str = ""


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _not_null(schema: dict) -> dict:
    """A nullable property's schema (`anyOf: [X, {type: null}]`) as X."""
    for choice in schema.get("anyOf", ()):
        if choice.get("type") != "null":
            return choice
    return schema


def _types(schema: dict) -> list[str]:
    found = schema.get("type", [])
    return [found] if isinstance(found, str) else list(found)


def columns(document: dict, kind: str, entries: int = EDUCATION_COLUMNS) -> list[Column]:
    """The row schema's leaves as columns: nested objects flattened with `_`, a list of objects
    (education) as `entries` numbered groups, a list of values as one `;`-separated column."""
    component = document["components"]["schemas"][KINDS[kind][2]]
    return list(_leaves(document, component, (), "", "", kind, top=True, entries=entries))


def _leaves(document, schema, path, prefix, label_prefix, kind, top=False, entries=0):
    schema = _resolve(document, schema)
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        prop_schema = _resolve(document, _not_null(prop))
        label = (NAME_LABELS.get(kind, LABELS["name"]) if top and name == "name"
                 else LABELS.get(name, name))  # fmt: skip
        types = _types(prop_schema)
        if "object" in types or "properties" in prop_schema:
            yield from _leaves(document, prop_schema, (*path, name), f"{prefix}{name}_",
                               f"{label_prefix}{label}_", kind)  # fmt: skip
        elif "array" in types and "properties" in _resolve(document, prop_schema["items"]):
            for n in range(entries):
                yield from _leaves(document, prop_schema["items"], (*path, name, n),
                                   f"{prefix}{name}_{n + 1}_", f"{label_prefix}{label}{n + 1}_",
                                   kind)  # fmt: skip
        else:
            items = _resolve(document, prop_schema.get("items", {}))
            values = prop_schema.get("enum") or items.get("enum") or []
            yield Column(
                name=f"{prefix}{name}",
                path=(*path, name),
                label=f"{label_prefix}{label}",
                type="list" if "array" in types else next(
                    (t for t in types if t != "null"), "string"),
                required=name in required and top,
                values=[v for v in values if v is not None],
                description=prop_schema.get("description", ""),
            )  # fmt: skip


class Layout:
    """How a file's headers map onto the row schema's columns, whichever language they are in."""

    ENTRY = re.compile(r"^(?P<list>[a-z_]+?)_(?P<n>\d+)_(?P<rest>[a-z_]+)$")

    def __init__(self, document: dict, kind: str, headers: list[str]):
        self.kind = kind
        base = columns(document, kind, entries=1)
        self.by_name = {c.name: c for c in base}
        self.by_label = {c.label: c for c in base}
        self.headers = headers
        self.targets: list[tuple | None] = []
        self.unknown: list[str] = []
        for header in headers:
            target = self._target(header.strip()) if header else None
            if header and target is None:
                self.unknown.append(header)
            self.targets.append(target)

    def _target(self, header: str) -> tuple | None:
        """The column's path (with the entry's index, for a list of objects) and type."""
        for table, numbered, first in (
            (self.by_name, r"^(.*?)_(\d+)_(.*)$", r"\1_1_\3"),
            (self.by_label, r"^(.*?)(\d+)_(.*)$", r"\g<1>1_\3"),
        ):
            if header in table:
                return table[header].path, table[header].type
            match = re.match(numbered, header)
            if match and int(match.group(2)) >= 1 and match.expand(first) in table:
                column = table[match.expand(first)]
                n = int(match.group(2)) - 1
                return tuple(n if isinstance(p, int) else p for p in column.path), column.type
        return None

    def is_header_row(self, cells: list) -> bool:
        """A second header row (a template has both languages): every cell a header."""
        texts = [str(c).strip() for c in cells if c not in (None, "")]
        return bool(texts) and all(self._target(t) is not None for t in texts)

    def row(self, cells: list) -> dict:
        """The row as the batch operation takes it: nested, lists split, empty cells left out."""
        row: dict = {}
        for target, cell in zip(self.targets, cells, strict=False):
            if target is None:
                continue
            value = _cell(cell, target[1])
            if value is None:
                continue
            _put(row, target[0], value)
        return _lists_in_order(row)

    def column_of(self, field_path: str) -> str:
        """The header (as the file has it) of a field the service names: `education.0.degree`."""
        parts = field_path.split(".")
        english = "_".join(str(int(p) + 1) if p.isdigit() else p for p in parts)
        while parts:  # a list's value (needs.1) is its column's
            for header, target in zip(self.headers, self.targets, strict=False):
                if target is not None and list(map(str, target[0])) == parts:
                    return header
            if not parts[-1].isdigit():
                break
            parts = parts[:-1]
        return english


def _cell(cell, kind: str):
    if cell is None:
        return None
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, bool):
        return cell
    if isinstance(cell, float) and cell.is_integer() and kind == "integer":
        return int(cell)
    if isinstance(cell, int | float):
        return cell if kind != "string" else str(cell)
    text = str(cell).strip()
    if not text:
        return None
    if kind == "list":
        return [part.strip() for part in LIST_SEPARATOR.split(text) if part.strip()]
    if kind == "boolean":
        if text in TRUE_WORDS:
            return "true"
        if text in FALSE_WORDS:
            return "false"
    return text


def _put(row: dict, path: tuple, value) -> None:
    node = row
    for key in path[:-1]:
        node = node.setdefault(key, {})  # a list's entries by index: made a list at the end
    node[path[-1]] = value


def _lists_in_order(node):
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists_in_order(node[k]) for k in sorted(node)]
        return {k: _lists_in_order(v) for k, v in node.items()}
    return node


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list]]]:
    """The header row and the data rows with their row numbers as a spreadsheet shows them."""
    return read_table(path.name, path.read_bytes())


def read_table(name: str, data: bytes) -> tuple[list[str], list[tuple[int, list]]]:
    """`read_rows` of a file's name and content (an upload). ValueError: not a .csv or .xlsx
    file, or one that cannot be read as one."""
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as error:  # a zip that is no workbook, or no zip at all
            raise ValueError(f"{name}: not an XLSX workbook ({error})") from None
        try:
            sheet = workbook.worksheets[0]
            rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(decode(data))))
    else:
        raise ValueError(f"{name}: only .csv and .xlsx files are read")
    if not rows:
        return [], []
    headers = [("" if h is None else str(h).strip()) for h in rows[0]]
    numbered = [
        (number, row)
        for number, row in enumerate(rows[1:], start=2)
        if any(c not in (None, "") for c in row)
    ]
    return headers, numbered


def batches(rows, layout: Layout):
    """The rows (number, cells) as the batch operation takes them, in batches of at most
    `BATCH_ROWS` rows and `BATCH_BYTES` of JSON: lists of (number, row)."""
    batch, size = [], 0
    for number, cells in rows:
        row = layout.row(cells)
        row_size = len(json.dumps(row, ensure_ascii=False).encode()) + 1
        if batch and (len(batch) == BATCH_ROWS or size + row_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((number, row))
        size += row_size
    if batch:
        yield batch


def error_lines(batch: list, outcome: dict, layout: Layout) -> list[list]:
    """A batch's invalid rows as lines of the errors file (`ERROR_COLUMNS`): the row number the
    spreadsheet shows, the column as the file has it, the field, the message in each language."""
    lines = []
    for result in outcome["results"]:
        if result["status"] == "invalid":
            number = batch[result["row"]][0]
            for error in result["errors"]:
                lines.append([number, layout.column_of(error["field"]), error["field"],
                              error["message_zh"], error["message_en"]])  # fmt: skip
    return lines


def errors_csv(lines: list[list]) -> bytes:
    """The errors file: UTF-8 with a BOM, so Excel opens it in either language."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ERROR_COLUMNS)
    writer.writerows(lines)
    return out.getvalue().encode("utf-8-sig")


def decode(data: bytes) -> str:
    """CSV text in UTF-8 (with or without BOM) or GB18030."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor GB18030 text")


def write_template(document: dict, kind: str, path: Path) -> None:
    """An XLSX to fill in: the English and the Chinese header rows, then the rows; a sheet of
    the allowed values and one of an example row."""
    cols = columns(document, kind)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = kind
    sheet.append([c.name for c in cols])
    sheet.append([c.label for c in cols])
    sheet.freeze_panes = "A3"
    values = workbook.create_sheet("allowed values 取值")
    values.append(["column", "列", "required 必填", "allowed values 可选值", "description 说明"])
    for c in cols:
        allowed = ";".join(c.values) if c.values else {
            "boolean": "true/false 是/否", "list": "; separated 以;分隔", "integer": "integer 整数",
            "number": "number 数字",
        }.get(c.type, "")  # fmt: skip
        if c.path[-1] in ("birth_date", "return_date", "start_date", "end_date",
                          "registration_date", "valid_from", "valid_until"):  # fmt: skip
            allowed = "YYYY-MM-DD"
        values.append([c.name, c.label, "yes 是" if c.required else "", allowed, c.description])
    example = workbook.create_sheet("example 示例")
    example.append([c.name for c in cols])
    example.append([c.label for c in cols])
    example.append([EXAMPLES[kind].get(c.name) for c in cols])
    workbook.save(path)


def write_xlsx(path: Path, headers: list[str], labels: list[str], rows: list[list]) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(headers)
    sheet.append(labels)
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def label_of(name: str, kind: str | None = None) -> str:
    """The Chinese header of an export's column `a_b_c`."""
    if name == "name" and kind in NAME_LABELS:
        return NAME_LABELS[kind]
    if name in LABELS:
        return LABELS[name]
    for prefix in ("company", "consents", "education"):
        if name.startswith(prefix + "_"):
            rest = name[len(prefix) + 1 :]
            match = re.match(r"(\d+)_(.+)", rest)
            if match:
                return f"{LABELS[prefix]}{match.group(1)}_{LABELS.get(match.group(2), rest)}"
            return f"{LABELS[prefix]}_{LABELS.get(rest, rest)}"
    return name
