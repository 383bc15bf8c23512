"""Rows of the case and incident queries → JSON, with personal data masked by role.

What may be shown to whom is decided here once for every JSON answer of the API:

- phone numbers never appear: free text (descriptions, notes, reasons) has every phone-like
  number masked (``138****5678``) whoever reads it, and staff phones are never selected;
- the names of the people in a case trail are shown in full to the command centre, supervisors
  and admins, with the given name hidden (``张*``) to field staff and handlers, and not at all to
  viewers, who see the actor's role only.

Times are ISO 8601 with their offset; positions are GeoJSON ``Point`` geometries (lon, lat in
CGCS2000, which agrees with WGS84 to well under a metre at city scale).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from gis.masking import mask_name, mask_phone

#: Roles that see actors' names in full, and roles that see them masked; others see the role.
NAMES_IN_FULL = frozenset({"admin", "acceptor", "shift_leader", "dispatcher", "supervisor"})
NAMES_MASKED = frozenset({"handler", "grid_leader", "grid_worker"})

#: Mobile numbers (1[3-9] + 9 digits) and landlines with an area code (0510-8xxxxxxx).
PHONE_PATTERN = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(?:1[3-9]\d{9}|0\d{2,3}[ -]?\d{7,8})(?!\d)")

CASE_TIMES = ("reported_at", "accepted_at", "filed_at", "dispatched_at", "handled_at",
              "verified_at", "closed_at", "evaluated_at", "node_due_at", "handle_due_at",
              "due_at")
CASE_COUNTS = ("rework_count", "return_count", "extension_count")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def point(lon: float | None, lat: float | None) -> dict | None:
    """A GeoJSON Point, or None when there is no position."""
    if lon is None or lat is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def scrub_phones(text: str | None) -> str:
    """Free text with every phone-like number masked."""
    return PHONE_PATTERN.sub(lambda match: mask_phone(match[0]) or "", text or "")


def actor_name(name: str | None, viewer_role: str) -> str | None:
    """An actor's name as the reader's role may see it."""
    if viewer_role in NAMES_IN_FULL:
        return name
    if viewer_role in NAMES_MASKED:
        return mask_name(name)
    return None


def _unit_codes(row: Mapping[str, Any]) -> dict[str, str | None]:
    return {key: row[key] for key in ("grid_code", "community_code", "street_code")}


def _department(department_id: int | None, name: str | None) -> dict | None:
    return None if department_id is None else {"id": department_id, "name": name}


# -- incidents ------------------------------------------------------------------------------------
def incident_json(row: Mapping[str, Any]) -> dict:
    """One incident with its location and, when it has one, a summary of its case."""
    case = None if row["case_id"] is None else {
        "id": row["case_id"], "number": row["case_number"], "state": row["case_state"]}
    return {
        "id": row["id"], "reported_at": iso(row["reported_at"]), "source": row["source"],
        "class_code": row["class_code"], "class_name": row["class_name"],
        "description": scrub_phones(row["description"]),
        "location_status": row["location_status"], "location": point(row["lon"], row["lat"]),
        "generation_id": row["generation_id"], **_unit_codes(row), "case": case,
    }


def feature(properties: dict, id_key: str = "id") -> dict:
    """A GeoJSON Feature from a JSON object whose ``location`` becomes the geometry."""
    rest = {key: value for key, value in properties.items() if key != "location"}
    return {"type": "Feature", "id": properties[id_key], "geometry": properties["location"],
            "properties": rest}


# -- cases ----------------------------------------------------------------------------------------
def case_json(row: Mapping[str, Any], now: datetime) -> dict:
    """One case: state, units, responsible departments, timestamps, deadlines, counters."""
    overdue = (row["closed_at"] is None and row["node_due_at"] is not None
               and row["node_due_at"] < now)
    return {
        "id": row["id"], "number": row["number"], "state": row["state"],
        "class_code": row["class_code"], "class_name": row["class_name"],
        "area_class": row["area_class"], **_unit_codes(row),
        "department": _department(row["department_id"], row["department_name"]),
        "handler": _department(row["handler_id"], row["handler_name"]),
        "duplicate_of_id": row["duplicate_of_id"],
        **{key: iso(row[key]) for key in CASE_TIMES},
        "overdue": overdue,
        **{key: row[key] for key in CASE_COUNTS},
        "extension_pending": row["extension_pending"], "supervised": row["supervised"],
        "evaluation_score": row["evaluation_score"], "version": row["version"],
        "incident": {"id": row["incident_id"], "reported_at": iso(row["incident_reported_at"]),
                     "description": scrub_phones(row["description"])},
        "location": point(row["lon"], row["lat"]),
    }


def event_json(row: Mapping[str, Any], viewer_role: str) -> dict:
    """One step of a case trail; the actor's name as ``viewer_role`` may see it."""
    details = dict(row["details"] or {})
    if isinstance(details.get("reason"), str):
        details["reason"] = scrub_phones(details["reason"])
    return {
        "seq": row["seq"], "action": row["action"], "from_state": row["from_state"],
        "to_state": row["to_state"],
        "actor": {"role": row["actor_role"], "name": actor_name(row["actor_name"], viewer_role)},
        "at": iso(row["at"]), "location": point(row["lon"], row["lat"]),
        "note": scrub_phones(row["note"]), "photos": list(row["photos"] or []),
        "details": details, "node_due_at": iso(row["node_due_at"]), "overdue": row["overdue"],
    }


def copy_json(row: Mapping[str, Any]) -> dict:
    """A department the case was copied to (抄告)."""
    return {"department": _department(row["department_id"], row["department_name"]),
            "at": iso(row["at"]), "reason": scrub_phones(row["reason"])}


# -- indicators -----------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy values unwrapped, NaN and missing values as None."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def indicator_rows(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    """One object per unit: code, name, parent code and the chosen columns under ``values``."""
    columns = list(columns)
    return [
        {"code": str(code), "name": plain(row["name"]), "parent_code": plain(row["parent_code"]),
         "values": {column: plain(row[column]) for column in columns}}
        for code, row in frame.iterrows()
    ]
