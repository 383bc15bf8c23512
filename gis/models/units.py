"""Governance units and their boundary generations (as MapIt keeps them).

A generation is one complete set of boundaries at the four levels. It is loaded inactive,
validated, then activated atomically; exactly one generation is active at a time and earlier
ones stay queryable, so a case keeps the unit it was filed under.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gis.config import STORAGE_SRID
from gis.models.base import Base, in_list

LEVELS = ("district", "street", "community", "grid")
GRID_TYPES = ("comprehensive", "dedicated")
DEDICATED_KINDS = ("school", "hospital", "market", "park", "enterprise", "scenic_area")


class Generation(Base):
    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text, default="")
    checksum: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    units: Mapped[list[Unit]] = relationship(back_populates="generation")

    __table_args__ = (
        # At most one active generation: activation flips two rows in one transaction.
        Index("uq_generation_one_active", "active", unique=True,
              postgresql_where=text("active")),
    )


class Unit(Base):
    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    grid_type: Mapped[str | None] = mapped_column(String(16))
    dedicated_kind: Mapped[str | None] = mapped_column(String(16))
    area_m2: Mapped[float] = mapped_column(Float)
    geom = mapped_column(
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )

    generation: Mapped[Generation] = relationship(back_populates="units")
    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    __table_args__ = (
        UniqueConstraint("generation_id", "code", name="uq_unit_generation_code"),
        Index("ix_unit_generation_level_code", "generation_id", "level", "code"),
        CheckConstraint(in_list("level", LEVELS), name="level"),
        CheckConstraint(
            f"(level = 'grid' AND {in_list('grid_type', GRID_TYPES)}) "
            "OR (level <> 'grid' AND grid_type IS NULL)",
            name="grid_type",
        ),
        CheckConstraint(
            f"(grid_type = 'dedicated' AND {in_list('dedicated_kind', DEDICATED_KINDS)}) "
            "OR (grid_type IS DISTINCT FROM 'dedicated' AND dedicated_kind IS NULL)",
            name="dedicated_kind",
        ),
        CheckConstraint("(level = 'district') = (parent_id IS NULL)", name="parent"),
    )
