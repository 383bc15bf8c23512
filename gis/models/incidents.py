"""Incidents, their classes, bulk-import batches and quarantined rows.

``incident`` is partitioned by year of ``reported_at`` (a district files millions a year; old
years can be detached or archived whole, and time-bounded rollups touch only their partitions).
The primary key therefore includes ``reported_at``. De-duplication by source key needs a unique
key that does not, so it lives in the small unpartitioned ``incident_key`` table.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.config import STORAGE_SRID
from gis.models.base import Base, in_list

SOURCES = ("grid_worker", "hotline", "video_patrol", "bulk_import", "api", "open311")
LOCATION_STATUSES = ("assigned", "outside", "invalid")
CLASS_KINDS = ("component", "event")

incident_id_seq = Sequence("incident_id_seq", metadata=Base.metadata)


class IncidentClass(Base):
    """A component (部件) or event (事件) class: ``C``/``E`` + 2-digit major + 2-digit minor."""

    __tablename__ = "incident_class"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    major_name: Mapped[str] = mapped_column(String(50))
    minor_name: Mapped[str] = mapped_column(String(100))
    line: Mapped[str] = mapped_column(String(40))

    __table_args__ = (
        CheckConstraint(in_list("kind", CLASS_KINDS), name="kind"),
        CheckConstraint("code ~ '^[CE][0-9]{4}$'", name="code"),
    )


class ImportBatch(Base):
    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_file: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_read: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    loaded: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class IncidentReject(Base):
    """A row that could not be loaded, kept with its reason (quarantine)."""

    __tablename__ = "incident_reject"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"),
                                          index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict] = mapped_column(JSONB)


class Incident(Base):
    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigInteger, incident_id_seq, primary_key=True,
                                    server_default=incident_id_seq.next_value())
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    source_key: Mapped[str | None] = mapped_column(String(200))
    class_code: Mapped[str] = mapped_column(ForeignKey("incident_class.code"))
    description: Mapped[str] = mapped_column(Text, server_default=text("''"))
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=True))
    orig_x: Mapped[float | None] = mapped_column(Float)
    orig_y: Mapped[float | None] = mapped_column(Float)
    orig_crs: Mapped[str | None] = mapped_column(String(32))
    location_status: Mapped[str | None] = mapped_column(String(10))
    # Unit and generation ids without foreign keys: they come from the assignment trigger or
    # the bulk loader's lookup of the locked active generation, and units are never deleted
    # or moved (triggers in migration 0006), so a per-row check would only slow bulk loads.
    generation_id: Mapped[int | None] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int | None] = mapped_column(BigInteger)
    street_id: Mapped[int | None] = mapped_column(BigInteger)
    batch_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        CheckConstraint(in_list("source", SOURCES), name="source"),
        CheckConstraint(in_list("location_status", LOCATION_STATUSES), name="location_status"),
        # Rollups go per grid and roll up by code (gis.indicators), so one unit index serves.
        Index("ix_incident_grid_reported", "grid_id", "reported_at"),
        Index("ix_incident_class_reported", "class_code", "reported_at"),
        Index("ix_incident_reported_brin", "reported_at", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )


class IncidentKey(Base):
    """One row per (source, source key): a re-run of an import loads nothing twice."""

    __tablename__ = "incident_key"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigInteger)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IncidentAssignmentHistory(Base):
    """The assignment an incident had before a new generation reassigned it."""

    __tablename__ = "incident_assignment_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigInteger, index=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    generation_id: Mapped[int | None] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int | None] = mapped_column(BigInteger)
    street_id: Mapped[int | None] = mapped_column(BigInteger)
    location_status: Mapped[str | None] = mapped_column(String(10))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now())
