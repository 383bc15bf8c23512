"""Routing: case class → power items → responsible department → the squadron on the spot.

Enforcement is "district-managed, street-used" (区属街用): when the responsible department keeps
squadrons, the case goes to the squadron stationed in the case's street. Departments listed as
``copy`` for the class are copied in (抄告). A class nobody is responsible for lands in the
command centre's queue: no case is ever dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

from sqlalchemy import Connection, text

COMMAND_CENTRE_CODE = "command_centre"


@dataclass(frozen=True)
class Route:
    department_id: int
    department_name: str
    handler_id: int
    handler_name: str
    fallback: bool
    reason: str
    copy_department_ids: list[int] = field(default_factory=list)
    power_item_codes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def route_case(conn: Connection, class_code: str, street_code: str | None,
               on: date | None = None) -> Route:
    """Where a case of ``class_code`` in ``street_code`` goes, with the reason."""
    on = on or date.today()
    responsible = conn.execute(text(
        """SELECT d.id, d.name FROM class_route r JOIN department d ON d.id = r.department_id
           WHERE r.class_code = :c AND r.role = 'responsible'"""), {"c": class_code}).first()
    copies = list(conn.execute(text(
        "SELECT department_id FROM class_route WHERE class_code = :c AND role = 'copy' "
        "ORDER BY department_id"), {"c": class_code}).scalars())
    powers = list(conn.execute(text(
        """SELECT p.code FROM class_power cp JOIN power_item p ON p.id = cp.power_item_id
           WHERE cp.class_code = :c AND p.valid_from <= :on
             AND (p.valid_to IS NULL OR p.valid_to > :on)
           ORDER BY p.code"""), {"c": class_code, "on": on}).scalars())
    if responsible is None:
        centre = _command_centre(conn)
        return Route(centre[0], centre[1], centre[0], centre[1], True,
                     f"no department is responsible for class {class_code}: command centre "
                     "queue", copies, powers)
    squadron = _squadron(conn, responsible.id, street_code)
    if squadron is None:
        return Route(responsible.id, responsible.name, responsible.id, responsible.name, False,
                     f"class {class_code} → {responsible.name}", copies, powers)
    return Route(responsible.id, responsible.name, squadron[0], squadron[1], False,
                 f"class {class_code} → {responsible.name} → {squadron[1]} (street "
                 f"{street_code})", copies, powers)


def _squadron(conn: Connection, department_id: int, street_code: str | None):
    """The squadron (or street office) of the department, or of the teams under it, that is
    stationed in the street."""
    if street_code is None:
        return None
    return conn.execute(text(
        """
        WITH RECURSIVE below AS (
            SELECT id, kind, name, street_code FROM department WHERE id = :d
            UNION ALL
            SELECT c.id, c.kind, c.name, c.street_code FROM department c
            JOIN below b ON c.parent_id = b.id
        )
        SELECT id, name FROM below
        WHERE kind IN ('squadron', 'street_office') AND street_code = :s
        ORDER BY id LIMIT 1
        """), {"d": department_id, "s": street_code}).first()


def _command_centre(conn: Connection) -> tuple[int, str]:
    row = conn.execute(text(
        "SELECT id, name FROM department WHERE kind = 'command_centre' ORDER BY id LIMIT 1")
    ).first()
    if row is None:
        raise LookupError("no command centre department: load the organisation catalogue "
                          "(gridgov catalogues load)")
    return row.id, row.name
