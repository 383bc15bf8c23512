"""Spot checks under "double random, one public" (双随机、一公开) and risk early warnings.

One list and two registries: the published inspection items, the targets (market entities) and
the law-enforcement inspectors, with the relations that recuse an inspector. A plan names the
items and the risk tiers; a draw records its seed, the canonical snapshot of its inputs and its
result, and derives visits (several items on one entity merged into one visit). Draws and visits
are evidence: append-only, like the case trail. Results are recorded by the inspecting side and
published. Warnings are the statistical findings of the risk scan, each routed by a notice.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.config import STORAGE_SRID
from gis.models.base import Base, in_list

TARGET_KINDS = ("enterprise", "individual_business", "social_organisation")
CREDIT_LEVELS = ("A", "B", "C", "D")
VISIT_STATUSES = ("assigned", "understaffed")
#: 未发现问题 / 责令整改 / 移送立案 / 通过登记的住所无法联系 (查无下落).
OUTCOMES = ("compliant", "rectify", "penalty_referred", "not_found")
WARNING_METHODS = ("poisson", "gi_star")
SERIES_KINDS = ("line", "class")


# -- the list and the registries -----------------------------------------------------------------
class InspectionItem(Base):
    """One item of the published spot-check list (抽查事项清单)."""

    __tablename__ = "inspection_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    line: Mapped[str | None] = mapped_column(String(40))
    ratio: Mapped[float | None] = mapped_column(Float)
    frequency: Mapped[str] = mapped_column(String(60), server_default=text("''"))
    method: Mapped[str] = mapped_column(String(100), server_default=text("''"))
    qualification: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (CheckConstraint("ratio IS NULL OR (ratio > 0 AND ratio <= 1)",
                                      name="ratio"),)


class InspectionTarget(Base):
    """A market entity in the target registry (检查对象名录库), assigned to its grid on load."""

    __tablename__ = "inspection_target"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    object_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(Text, server_default=text("''"))
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=True))
    grid_code: Mapped[str | None] = mapped_column(String(20), index=True)
    street_code: Mapped[str | None] = mapped_column(String(9), index=True)
    credit_level: Mapped[str | None] = mapped_column(String(1))
    complaints: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        CheckConstraint(in_list("kind", TARGET_KINDS), name="kind"),
        CheckConstraint(f"credit_level IS NULL OR {in_list('credit_level', CREDIT_LEVELS)}",
                        name="credit_level"),
        CheckConstraint("complaints >= 0", name="complaints"),
    )


class Inspector(Base):
    """A law-enforcement inspector in the inspector registry (执法检查人员名录库)."""

    __tablename__ = "inspector"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    id_number: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(30))
    certificate: Mapped[str | None] = mapped_column(String(40))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    street_code: Mapped[str | None] = mapped_column(String(9))
    qualifications: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class InspectorRelation(Base):
    """A recorded relation between an inspector and a target: grounds for recusal (回避)."""

    __tablename__ = "inspector_relation"

    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id", ondelete="CASCADE"),
                                              primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("inspection_target.id",
                                                      ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(Text, server_default=text("''"))


# -- plans, draws, visits, results ---------------------------------------------------------------
class SpotCheckPlan(Base):
    """A spot-check plan: its items, its risk tiers (JSON) and the inspectors per visit."""

    __tablename__ = "spot_check_plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text, server_default=text("''"))
    period: Mapped[str | None] = mapped_column(String(40))
    tiers: Mapped[list] = mapped_column(JSONB)
    min_inspectors: Mapped[int] = mapped_column(SmallInteger, server_default=text("2"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (CheckConstraint("min_inspectors >= 2", name="min_inspectors"),)


class SpotCheckPlanItem(Base):
    __tablename__ = "spot_check_plan_item"

    plan_id: Mapped[int] = mapped_column(ForeignKey("spot_check_plan.id", ondelete="CASCADE"),
                                         primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("inspection_item.id"), primary_key=True)


class SpotCheckDraw(Base):
    """One draw: seed, canonical inputs and result (the hashed texts themselves). Append-only."""

    __tablename__ = "spot_check_draw"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("spot_check_plan.id"))
    period: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
    seed: Mapped[str] = mapped_column(String(100))
    algorithm: Mapped[str] = mapped_column(String(40))
    inputs_json: Mapped[str] = mapped_column(Text)
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    result_json: Mapped[str] = mapped_column(Text)
    result_sha256: Mapped[str] = mapped_column(String(64))
    drawn_by: Mapped[str] = mapped_column(String(100), server_default=text("''"))
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                               server_default=func.now())

    __table_args__ = (
        UniqueConstraint("plan_id", "period", "seq", name="uq_spot_check_draw_plan_period_seq"),
        CheckConstraint("seq >= 1", name="seq"),
        CheckConstraint("seq = 1 OR length(btrim(reason)) > 0", name="redraw_reason"),
    )


class SpotCheckVisit(Base):
    """One visit of a draw: one entity, the items checked there, the inspectors. Append-only."""

    __tablename__ = "spot_check_visit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("spot_check_draw.id"))
    seq: Mapped[int] = mapped_column(Integer)
    target_id: Mapped[int] = mapped_column(ForeignKey("inspection_target.id"), index=True)
    item_codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    inspector_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, server_default=text("''"))

    __table_args__ = (
        UniqueConstraint("draw_id", "seq", name="uq_spot_check_visit_draw_seq"),
        CheckConstraint(in_list("status", VISIT_STATUSES), name="status"),
    )


class SpotCheckResult(Base):
    """A result recorded by the inspecting side (who inspects, who records). Append-only: a
    correction is a new row that supersedes the earlier one."""

    __tablename__ = "spot_check_result"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("spot_check_visit.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("inspection_item.id"))
    outcome: Mapped[str] = mapped_column(String(20))
    findings: Mapped[str] = mapped_column(Text, server_default=text("''"))
    inspected_on: Mapped[date] = mapped_column(Date)
    inspector_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("inspector.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now())
    published: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("spot_check_result.id"))

    __table_args__ = (CheckConstraint(in_list("outcome", OUTCOMES), name="outcome"),)


# -- risk early warning --------------------------------------------------------------------------
class RiskWarning(Base):
    """A series (grid × line or class) whose count rose significantly in a period."""

    __tablename__ = "risk_warning"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    method: Mapped[str] = mapped_column(String(12))
    period: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    series_kind: Mapped[str] = mapped_column(String(8))
    series: Mapped[str] = mapped_column(String(40))
    generation_id: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    street_code: Mapped[str] = mapped_column(String(9))
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    statistic: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        UniqueConstraint("method", "period", "series", "grid_code",
                         name="uq_risk_warning_method_period_series_grid"),
        CheckConstraint(in_list("method", WARNING_METHODS), name="method"),
        CheckConstraint(in_list("series_kind", SERIES_KINDS), name="series_kind"),
        Index("ix_risk_warning_period_start", "period_start"),
    )


class WarningNotice(Base):
    """The notice sending a warning to the responsible department, with the route taken."""

    __tablename__ = "warning_notice"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("risk_warning.id", ondelete="CASCADE"),
                                            unique=True)
    class_code: Mapped[str] = mapped_column(ForeignKey("incident_class.code"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    handler_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    fallback: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    route_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
