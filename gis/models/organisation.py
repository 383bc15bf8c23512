"""Departments, staff and who works in which grid.

Units are referred to by code (street code for squadrons, grid code for grid staff) rather than
by unit id, because ids change with every boundary generation while codes persist.
"""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from gis.models.base import Base, in_list

DEPARTMENT_KINDS = ("bureau", "professional_team", "enforcement_team", "squadron",
                    "command_centre", "street_office")
POSTS = ("grid_leader", "grid_worker", "supervisor", "call_taker", "acceptor", "shift_leader",
         "dispatcher", "management_member", "enforcement_member")
GRID_ROLES = ("leader", "worker")


class Department(Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    street_code: Mapped[str | None] = mapped_column(String(20), index=True)
    line: Mapped[str | None] = mapped_column(String(40))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (CheckConstraint(in_list("kind", DEPARTMENT_KINDS), name="kind"),)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    post: Mapped[str] = mapped_column(String(30))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (CheckConstraint(in_list("post", POSTS), name="post"),)


class StaffGrid(Base):
    """A grid leader or worker attached to a grid (a leader may lead several grids)."""

    __tablename__ = "staff_grid"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"),
                                          primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))

    __table_args__ = (
        CheckConstraint(in_list("role", GRID_ROLES), name="role"),
        Index("ix_staff_grid_grid_code", "grid_code"),
    )


class GridAreaClass(Base):
    """Area class (A/B/C) of a grid: deadlines are often set per class of area."""

    __tablename__ = "grid_area_class"

    grid_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    area_class: Mapped[str] = mapped_column(String(1))

    __table_args__ = (CheckConstraint("area_class IN ('A', 'B', 'C')", name="area_class"),)
