"""Cases and their append-only trail.

A case is opened from an incident and walks the workflow of :mod:`gis.workflow`. The case row
holds the current state and the timestamps and deadlines the indicators need; ``case_event`` is
the trace of every transition (who, when, where, what, photos) and cannot be changed or deleted.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.config import STORAGE_SRID
from gis.models.base import Base


class Case(Base):
    __tablename__ = "case_file"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    incident_id: Mapped[int] = mapped_column(BigInteger)
    incident_reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    class_code: Mapped[str] = mapped_column(ForeignKey("incident_class.code"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    suspended_from: Mapped[str | None] = mapped_column(String(20))
    area_class: Mapped[str] = mapped_column(String(1), server_default=text("'B'"))
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generation.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    filed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    node_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handle_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    return_count: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    extension_count: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    extension_pending: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    supervised: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    evaluation_score: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["incident_id", "incident_reported_at"],
                             ["incident.id", "incident.reported_at"],
                             name="fk_case_file_incident"),
        UniqueConstraint("incident_id", "incident_reported_at", name="uq_case_file_incident"),
        Index("ix_case_file_reported", "reported_at"),
        Index("ix_case_file_grid_reported", "grid_id", "reported_at"),
        Index("ix_case_file_street_reported", "street_id", "reported_at"),
        Index("ix_case_file_community_reported", "community_id", "reported_at"),
        Index("ix_case_file_due", "due_at"),
        Index("ix_case_file_open_node_due", "node_due_at",
              postgresql_where=text("closed_at IS NULL")),
    )


class CaseEvent(Base):
    """One transition of one case. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False))
    note: Mapped[str] = mapped_column(Text, server_default=text("''"))
    photos: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    node_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_case_event_case_seq"),
        Index("ix_case_event_at", "at"),
    )


class CaseCopy(Base):
    """A matter copied to another department (抄告): it is informed, never dropped."""

    __tablename__ = "case_copy"

    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
