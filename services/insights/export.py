"""The export: the overview's tables, headers in zh-CN and en, numbers as numbers, written as an
XLSX workbook (openpyxl, one sheet per table) or as a zip of CSV files (UTF-8 with a byte order
mark, so spreadsheet programs read the Chinese). Pure: bytes in memory, no file, no clock."""

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font

from chassis.clock import SHANGHAI
from services.insights.figures import FUNNEL, METRICS, SOURCES, flat

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP = "application/zip"
NOT_COUNTED = "未统计 / not counted"
FUNNEL_HEADERS = {
    "eligible": "新获资格 / Became eligible",
    "consulted": "咨询 / Consulted",
    "applied": "申请 / Applied",
    "approved": "批准 / Approved",
    "awarded": "兑现 / Awarded",
}


@dataclass(frozen=True)
class Table:
    slug: str  # the CSV file's name
    sheet: str  # the XLSX sheet's name (at most 31 characters)
    headers: tuple[str, ...]
    rows: list[list]


@dataclass(frozen=True)
class Export:
    content: bytes
    media_type: str
    filename: str


def _when(moment: datetime | None) -> str:
    if moment is None:
        return NOT_COUNTED
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def tables(overview: dict, daily: list[dict]) -> list[Table]:
    """The tables of an export: overview, breakdowns, the funnel per programme, every figure
    per day, and coverage."""
    values = flat(overview)
    breakdowns = [
        ("by_industry", "行业 Industry", "行业 / Industry", "注册人数 / Registrations"),
        ("by_country", "留学国家 Country", "国家或地区（最高海外学位）/ Country (highest overseas "
         "degree)", "注册人数 / Registrations"),
        ("by_stage", "创业阶段 Stage", "创业阶段 / Startup stage", "注册人数 / Registrations"),
        ("eligible_by_policy", "政策资格 Eligibility", "政策代码 / Programme code",
         "新获资格人数 / Became eligible"),
    ]  # fmt: skip
    return [
        Table(
            "overview",
            "概览 Overview",
            ("指标 / Metric", "中文 / Chinese", "English", "数值 / Value"),
            [[m.name, m.zh, m.en, values[m.name]] for m in METRICS],
        ),
        *(
            Table(field, sheet, (key, count), [[k, n] for k, n in overview[field].items()])
            for field, sheet, key, count in breakdowns
        ),
        Table(
            "funnel_by_policy",
            "政策漏斗 Funnel",
            ("政策代码 / Programme code", *(FUNNEL_HEADERS[s] for s in FUNNEL)),
            [
                [code, *(stages[s] for s in FUNNEL)]
                for code, stages in overview["funnel_by_policy"].items()
            ],
        ),
        Table(
            "daily",
            "每日 Daily",
            ("日期 / Date", *(f"{m.zh} / {m.en}" for m in METRICS)),
            [[row["day"], *(row[m.name] for m in METRICS)] for row in daily],
        ),
        Table(
            "coverage",
            "统计起点 Coverage",
            ("数据来源 / Source", "统计起点（上海时间）/ Counted from (Shanghai time)"),
            [
                *([s, _when(overview["counted_from"][s])] for s in SOURCES),
                ["统计期间 / Period", f"{overview['from']} – {overview['to']}"],
                ["数据完整 / Complete", "是 / yes" if overview["complete"] else "否 / no"],
            ],
        ),
    ]


def xlsx(found: list[Table]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    bold = Font(bold=True)
    for table in found:
        sheet = workbook.create_sheet(table.sheet)
        sheet.append(list(table.headers))
        for cell in sheet[1]:
            cell.font = bold
        for row in table.rows:
            sheet.append(row)
        for cell in sheet["A"][1:]:
            if hasattr(cell.value, "year"):
                cell.number_format = "yyyy-mm-dd"
        sheet.freeze_panes = "B2"
        for column, header in zip(sheet.iter_cols(max_row=1), table.headers, strict=True):
            sheet.column_dimensions[column[0].column_letter].width = min(max(len(header), 12), 48)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_zip(found: list[Table]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in found:
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(table.headers)
            writer.writerows(["" if v is None else v for v in row] for row in table.rows)
            archive.writestr(f"{table.slug}.csv", "\ufeff" + text.getvalue())
    return buffer.getvalue()


def render(found: list[Table], fmt: str, name: str) -> Export:
    if fmt == "csv":
        return Export(csv_zip(found), ZIP, f"{name}.zip")
    return Export(xlsx(found), XLSX, f"{name}.xlsx")
