"""Reference catalogues kept as CSV under data/catalogues and loaded idempotently."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Engine, text

from gis.config import DATA_DIR

CLASSES_CSV = DATA_DIR / "catalogues" / "classes.csv"
CLASS_FIELDS = ("code", "kind", "major_name", "minor_name", "line")


def read_classes(path: Path = CLASSES_CSV) -> list[dict[str, str]]:
    """Read and check the class catalogue; a bad row raises ValueError naming row and field."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(CLASS_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
        rows = []
        for number, row in enumerate(reader, start=2):
            for field in CLASS_FIELDS:
                if not (row.get(field) or "").strip():
                    raise ValueError(f"{path} line {number}: {field} is empty")
            expected = "component" if row["code"].startswith("C") else "event"
            if row["kind"] != expected:
                raise ValueError(f"{path} line {number}: kind: {row['code']} is a {expected}")
            rows.append({field: row[field].strip() for field in CLASS_FIELDS})
    return rows


def load_classes(engine: Engine, path: Path = CLASSES_CSV) -> int:
    """Insert or update every class of the catalogue; returns how many it holds."""
    rows = read_classes(path)
    with engine.begin() as conn:
        conn.execute(text(
            """
            INSERT INTO incident_class (code, kind, major_name, minor_name, line)
            VALUES (:code, :kind, :major_name, :minor_name, :line)
            ON CONFLICT (code) DO UPDATE SET kind = excluded.kind,
                major_name = excluded.major_name, minor_name = excluded.minor_name,
                line = excluded.line
            """
        ), rows)
    return len(rows)
