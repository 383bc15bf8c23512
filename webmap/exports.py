"""Tables out as CSV and Excel: columns declared once, personal data masked on the way out.

A :class:`Column` says where a value comes from, its header (already in the reader's
language), its kind and, for personal data, the :mod:`gis.masking` function that hides it;
exports never carry an unmasked name, phone or ID number. CSV is UTF-8 with a byte-order mark,
so Excel opens Chinese text correctly, and text that a spreadsheet would run as a formula
(``=…``, ``+…``, ``-…``, ``@…``) is written inert: with a leading apostrophe in CSV, as a plain
string cell in Excel. Rates are written as fractions with a percent format in
Excel and as percentages (``93.72``) in CSV, where the header says so.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

KINDS = ("text", "int", "float", "rate", "bool")
#: A text cell starting with one of these is a formula to Excel and LibreOffice (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d",
                  "\uff20")
CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_XLSX_FORMATS = {"int": "#,##0", "float": "#,##0.00", "rate": "0.00%"}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"
    mask: Callable[[str | None], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: use one of {', '.join(KINDS)}")

    def value(self, row: Mapping[str, Any]) -> Any:
        """The cell value: masked, None for missing numbers, plain Python types."""
        value = row.get(self.key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.mask is not None:
            return self.mask(str(value))
        if self.kind == "int":
            return int(value)
        if self.kind in ("float", "rate"):
            return float(value)
        if self.kind == "bool":
            return bool(value)
        return str(value)


def _csv_cell(column: Column, value: Any, yes_no: tuple[str, str]) -> str:
    if value is None:
        return ""
    if column.kind == "rate":
        return f"{100 * value:.2f}"
    if column.kind == "float":
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if column.kind == "bool":
        return yes_no[0] if value else yes_no[1]
    return neutralise(str(value))


def neutralise(text: str) -> str:
    """Text that a spreadsheet would run as a formula, made inert with a leading apostrophe
    (OWASP's advice for CSV exports); other text unchanged."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]], *,
           yes_no: tuple[str, str] = ("yes", "no"), rate_suffix: str = " (%)") -> bytes:
    """CSV bytes (UTF-8 with BOM, CRLF rows); rate headers get ``rate_suffix``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.header + (rate_suffix if c.kind == "rate" else "") for c in columns])
    for row in rows:
        writer.writerow([_csv_cell(c, c.value(row), yes_no) for c in columns])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]], *, sheet: str,
            yes_no: tuple[str, str] = ("yes", "no"),
            highlight: Callable[[Mapping[str, Any]], str | None] | None = None) -> bytes:
    """An Excel workbook with one sheet: bold frozen header, typed cells, number formats,
    and an optional fill colour (``"RRGGBB"``) per row from ``highlight``."""
    book = Workbook()
    ws = book.active
    ws.title = sheet[:31]
    ws.append([c.header for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for row in rows:
        values = [c.value(row) for c in columns]
        ws.append([(yes_no[0] if v else yes_no[1]) if c.kind == "bool" and v is not None else v
                   for c, v in zip(columns, values, strict=True)])
        colour = highlight(row) if highlight else None
        for index, column in enumerate(columns, start=1):
            cell = ws.cell(row=ws.max_row, column=index)
            if cell.data_type == "f":  # openpyxl takes any "=…" string for a formula
                cell.data_type = "s"
            if column.kind in _XLSX_FORMATS:
                cell.number_format = _XLSX_FORMATS[column.kind]
            if colour:
                cell.fill = PatternFill("solid", fgColor=colour)
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(column.header))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
