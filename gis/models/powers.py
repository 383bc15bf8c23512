"""The power list (权力清单) and how case classes map onto it.

A power item is a legal power (a penalty or a coercive measure) with the department it came
from and the one that exercises it now; items have validity dates because the list is adjusted
over time. ``class_route`` says which department is responsible for a case class and which are
copied in (抄告).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from gis.models.base import Base

POWER_KINDS = ("penalty", "coercive_measure")
ROUTE_ROLES = ("responsible", "copy")


class PowerItem(Base):
    __tablename__ = "power_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    original_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    executing_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"),
                                                         index=True)
    kind: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    demo: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))

    __table_args__ = (
        CheckConstraint("kind IN ('penalty', 'coercive_measure')", name="kind"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
    )


class ClassPower(Base):
    """The power items a case class may call on."""

    __tablename__ = "class_power"

    class_code: Mapped[str] = mapped_column(ForeignKey("incident_class.code"), primary_key=True)
    power_item_id: Mapped[int] = mapped_column(ForeignKey("power_item.id", ondelete="CASCADE"),
                                               primary_key=True)


class ClassRoute(Base):
    """The department responsible for a class, and those copied in."""

    __tablename__ = "class_route"

    class_code: Mapped[str] = mapped_column(ForeignKey("incident_class.code"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(12))

    __table_args__ = (
        CheckConstraint("role IN ('responsible', 'copy')", name="role"),
        Index("uq_class_route_one_responsible", "class_code", unique=True,
              postgresql_where=sql_text("role = 'responsible'")),
    )


class DeadlineRule(Base):
    """A time limit for one node of the workflow, per class and area class ('*' = any)."""

    __tablename__ = "deadline_rule"

    class_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    area_class: Mapped[str] = mapped_column(String(1), primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    amount: Mapped[float]
    unit: Mapped[str] = mapped_column(String(12))

    __table_args__ = (
        CheckConstraint("unit IN ('work_hours', 'work_days', 'hours', 'days')", name="unit"),
        CheckConstraint("amount > 0", name="amount"),
    )
