"""Credit information: subjects, their records, the two lists, and exchange imports.

A subject (enterprise, individual business, person, social organisation) is known by its
identifier: the 18-character unified social credit code, or a person's resident ID number (personal
data: masked wherever shown). Records come from penalties, inspections, annual reports and
licences, locally or by exchange with the city and province systems (idempotent by
``record_id``). List entries (abnormal operation list, blacklist) are derived by the rules of
:mod:`gis.credit` (``origin = 'rule'``) or entered by hand; removal sets ``removed_on``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.models.base import Base, in_list

SUBJECT_KINDS = ("enterprise", "individual_business", "person", "social_organisation")
RECORD_KINDS = ("penalty", "inspection", "annual_report", "licence", "address_verified")
RECORD_SOURCES = ("local", "city", "province")
LISTS = ("abnormal", "blacklist")
LIST_REASONS = ("no_annual_report", "unreachable", "abnormal_3y", "serious_penalty",
                "repeat_penalties", "manual")
LIST_ORIGINS = ("rule", "manual")


class CreditSubject(Base):
    __tablename__ = "credit_subject"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    identifier: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(Text, server_default=text("''"))
    established_on: Mapped[date | None] = mapped_column(Date)
    level: Mapped[str | None] = mapped_column(String(1))
    level_reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
    level_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        CheckConstraint(in_list("kind", SUBJECT_KINDS), name="kind"),
        CheckConstraint("level IS NULL OR level IN ('A', 'B', 'C', 'D')", name="level"),
    )


class CreditRecord(Base):
    __tablename__ = "credit_record"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subject.id"))
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(10))
    occurred_on: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(Text, server_default=text("''"))
    department: Mapped[str] = mapped_column(String(200), server_default=text("''"))
    serious: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    year: Mapped[int | None] = mapped_column(SmallInteger)
    outcome: Mapped[str | None] = mapped_column(String(20))
    power_item_code: Mapped[str | None] = mapped_column(String(40))
    power_item_id: Mapped[int | None] = mapped_column(ForeignKey("power_item.id"))
    case_number: Mapped[str | None] = mapped_column(String(24))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"))
    inspection_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("spot_check_result.id"))
    content_sha256: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())

    __table_args__ = (
        CheckConstraint(in_list("kind", RECORD_KINDS), name="kind"),
        CheckConstraint(in_list("source", RECORD_SOURCES), name="source"),
        CheckConstraint("kind <> 'annual_report' OR year IS NOT NULL", name="report_year"),
        Index("ix_credit_record_subject_occurred", "subject_id", "occurred_on"),
        Index("ix_credit_record_updated_at", "updated_at"),
    )


class CreditListEntry(Base):
    """Membership of the abnormal operation list (经营异常名录) or the blacklist
    (严重违法失信名单), with its reason, dates and removal."""

    __tablename__ = "credit_list_entry"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("credit_subject.id"), index=True)
    list_name: Mapped[str] = mapped_column(String(10))
    reason_code: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    entered_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
    origin: Mapped[str] = mapped_column(String(8))
    rule_key: Mapped[str | None] = mapped_column(String(120))
    decided_by: Mapped[str] = mapped_column(String(200), server_default=text("''"))

    __table_args__ = (
        CheckConstraint(in_list("list_name", LISTS), name="list_name"),
        CheckConstraint(in_list("reason_code", LIST_REASONS), name="reason_code"),
        CheckConstraint(in_list("origin", LIST_ORIGINS), name="origin"),
        CheckConstraint("removed_on IS NULL OR removed_on >= entered_on", name="dates"),
        CheckConstraint("(origin = 'rule') = (rule_key IS NOT NULL)", name="rule_key"),
        UniqueConstraint("subject_id", "list_name", "rule_key",
                         name="uq_credit_list_entry_subject_list_rule"),
    )


class CreditImport(Base):
    """One import of an exchange file, with its counts."""

    __tablename__ = "credit_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    inserted: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    updated: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CreditImportReject(Base):
    """A line of an exchange file that was not loaded, kept with its reason."""

    __tablename__ = "credit_import_reject"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("credit_import.id", ondelete="CASCADE"),
                                           index=True)
    line: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
