"""Bulk loads of pre-assigned incidents: COPY, and empty yearly partitions built aside.

A bulk load (the importer, the simulator, the benchmark) arrives already assigned by the
in-memory engine (same edge rule as the trigger), so the database only has to store the rows.
``BulkLoad`` does that inside the caller's transaction, one chunk at a time:

1. the chunk reserves its incident ids from the sequence;
2. it claims its source keys in ``incident_key``: the first row of a key wins, within the load
   and across loads, and the rows whose key is taken come back as duplicates, each with the
   incident it repeats;
3. the rows go in with one ``COPY … (FORMAT csv)`` per target, the CSV written by Arrow with
   no per-row Python. Rows of a year whose partition was empty when the load first reached it
   (never written to: its heap has no page) go to a fresh table beside that partition, with no
   index and no trigger; all other rows go into ``incident`` (the trigger keeps their
   assignment: ``gridgov.preassigned``).

``finish()`` then makes each fresh table its year's partition, the way PostgreSQL's manual
advises for bulk loads (load first, index after, attach): it builds the parent's indexes and
constraints on it and analyses it, all without blocking anyone; then it takes ``incident``
exclusively (waiting at most ``lock_timeout``), detaches and drops the empty partition and
attaches the new table in its place. That lock lasts until the caller commits, which should
follow at once. A fresh table that stays small (fewer than ``swap_min_rows`` rows), whose
partition has received rows from someone else in the meantime, or whose swap cannot get the lock
in time is poured into ``incident`` with one ``INSERT … SELECT`` instead: the same rows, stored
the ordinary way.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import errors as pg_errors
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError, OperationalError

SRID = 4490
#: The columns of the frame ``BulkLoad.write`` takes. ``reported_at`` is timezone-aware (or naive
#: UTC); ``lon``/``lat`` are CGCS2000 (NaN where there is no location); ``orig_x``/``orig_y`` may
#: be NaN; ``generation_id`` and the unit ids are null where unassigned; ``source_key`` is null
#: for rows that are not de-duplicated.
BULK_COLUMNS = (
    "row_number", "source", "source_key", "class_code", "description", "reported_at",
    "lon", "lat", "orig_x", "orig_y", "orig_crs", "location_status", "generation_id",
    "grid_id", "community_id", "street_id",
)
#: The incident columns a load writes, in COPY order (``created_at`` takes its default).
STORED_COLUMNS = (
    "id", "reported_at", "source", "source_key", "class_code", "description", "geom",
    "orig_x", "orig_y", "orig_crs", "location_status", "generation_id", "grid_id",
    "community_id", "street_id", "batch_id",
)
SWAP_MIN_ROWS = 50_000  # below this a fresh table is poured into incident, not swapped in
LOCK_TIMEOUT_MS = 10_000  # the longest a swap waits for the exclusive lock on incident


@dataclass(frozen=True)
class BulkResult:
    loaded: int
    duplicates: list[tuple[int, int]]  # (row_number, incident id it duplicates)


@dataclass
class Partition:
    """A yearly range partition of ``incident``: ``[lower, upper)`` in UTC microseconds."""

    name: str
    bound: str  # as pg_get_expr prints it: FOR VALUES FROM ('…') TO ('…')
    lower: int
    upper: int
    lower_literal: str  # the bound's two timestamps as written in it
    upper_literal: str
    fresh: str | None = None  # the table built beside it, if it was empty
    rows: int = 0  # rows written to ``fresh``


@dataclass
class FinishReport:
    swapped: list[str] = field(default_factory=list)  # partitions replaced by a fresh table
    poured: list[str] = field(default_factory=list)  # fresh tables inserted into incident


class BulkLoad:
    """One bulk load inside the caller's transaction: ``write`` each chunk, then ``finish``.

    ``swap_partitions=False`` sends every row into ``incident`` directly (no fresh tables).
    """

    def __init__(self, conn: Connection, batch_id: int | None = None, *,
                 swap_partitions: bool = True, swap_min_rows: int | None = None,
                 lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> None:
        self.conn, self.batch_id = conn, batch_id
        self.swap_min_rows = SWAP_MIN_ROWS if swap_min_rows is None else swap_min_rows
        self.lock_timeout_ms = lock_timeout_ms
        swapping = swap_partitions and _may_swap(conn)
        self.partitions = _range_partitions(conn) if swapping else []
        self._lowers = np.array([p.lower for p in self.partitions], dtype=np.int64)
        self._checked: set[str] = set()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, rows: pd.DataFrame) -> BulkResult:
        """Store one chunk (``BULK_COLUMNS``); rows whose source key is taken are not stored."""
        missing = set(BULK_COLUMNS) - set(rows.columns)
        if missing:
            raise ValueError(f"bulk rows lack column(s) {', '.join(sorted(missing))}")
        if not len(rows):
            return BulkResult(0, [])
        rows = rows.reset_index(drop=True)
        at = _utc_micros(rows["reported_at"])
        table = _incident_table(rows, self._reserve_ids(len(rows)), at, self.batch_id)
        _refuse_nul(table, rows["row_number"])
        keep, duplicates = self._claim_keys(table, rows["row_number"].to_numpy())
        target = self._targets(at, keep)
        for name in pd.unique(target[keep]):
            self._copy(name, table.filter(pa.array(keep & (target == name))))
        return BulkResult(int(keep.sum()), duplicates)

    def _reserve_ids(self, n: int) -> np.ndarray:
        """``n`` new incident ids; usually one contiguous run, so only its ends are fetched."""
        low, high, ids = self.conn.execute(text(
            """
            WITH ids AS (SELECT nextval('incident_id_seq') AS id FROM generate_series(1, :n))
            SELECT min(id), max(id),
                   CASE WHEN max(id) - min(id) + 1 <> :n THEN string_agg(id::text, ',') END
            FROM ids
            """
        ), {"n": n}).one()
        if ids is None:
            return np.arange(low, high + 1, dtype=np.int64)
        return np.array(ids.split(","), dtype=np.int64)

    def _claim_keys(self, table: pa.Table,
                    row_number: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Claim the chunk's source keys in row order; the rows that lost come back as
        (row_number, incident id holding the key)."""
        keep = np.ones(len(table), dtype=bool)
        keyed = np.flatnonzero(table["source_key"].is_valid().to_numpy(zero_copy_only=False))
        if not len(keyed):
            return keep, []
        self.conn.execute(text(
            "CREATE TEMP TABLE IF NOT EXISTS incident_claim (position bigint, source text, "
            "source_key text, id bigint, reported_at timestamptz) ON COMMIT DROP"))
        self.conn.execute(text("TRUNCATE incident_claim"))
        claims = table.select(["source", "source_key", "id", "reported_at"]).take(keyed)
        self._copy("incident_claim", claims.append_column("position", pa.array(keyed)))
        claimed = self._insert_keys()
        if claimed == len(keyed):
            return keep, []
        lost = self.conn.execute(text(
            """
            SELECT c.position, k.incident_id
            FROM incident_claim c JOIN incident_key k USING (source, source_key)
            WHERE k.incident_id <> c.id
            ORDER BY c.position
            """
        )).all()
        keep[[position for position, _ in lost]] = False
        return keep, [(int(row_number[position]), holder) for position, holder in lost]

    def _insert_keys(self) -> int:
        """Insert the claim table's keys that are not taken yet (the first row of each wins);
        how many were inserted.

        A fresh load's keys are all free, and a plain INSERT of them costs half of ``ON
        CONFLICT DO NOTHING``'s speculative insertion, so that is tried first. If a key is
        taken already (a re-run, a repeated row, a concurrent writer), it fails on the unique
        index; then it is undone and redone the careful way.
        """
        try:
            with self.conn.begin_nested():
                return self.conn.execute(text(
                    """
                    INSERT INTO incident_key (source, source_key, incident_id, reported_at)
                    SELECT DISTINCT ON (source, source_key) source, source_key, id, reported_at
                    FROM incident_claim
                    ORDER BY source, source_key, position
                    """
                )).rowcount
        except IntegrityError as exc:
            if not isinstance(exc.orig, pg_errors.UniqueViolation):
                raise
        return self.conn.execute(text(
            """
            WITH claimed AS (
                INSERT INTO incident_key (source, source_key, incident_id, reported_at)
                SELECT source, source_key, id, reported_at FROM incident_claim
                ORDER BY source, source_key, position
                ON CONFLICT DO NOTHING
                RETURNING 1
            )
            SELECT count(*) FROM claimed
            """
        )).scalar_one()

    def _targets(self, at: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The table each row goes to: its partition's fresh table, or ``incident``; counts
        the kept rows each fresh table receives."""
        target = np.full(len(at), "incident", dtype=object)
        if not self.partitions:
            return target
        slot = np.searchsorted(self._lowers, at, side="right") - 1
        inside = slot >= 0
        inside[inside] = at[inside] < np.array([p.upper for p in self.partitions])[slot[inside]]
        for s in np.unique(slot[inside]):
            partition = self.partitions[s]
            fresh = self._fresh_table(partition)
            if fresh is not None:
                hit = inside & (slot == s)
                target[hit] = fresh
                partition.rows += int((hit & keep).sum())
        return target

    def _fresh_table(self, partition: Partition) -> str | None:
        """The fresh table of ``partition``, created the first time the load reaches it if the
        partition is empty then; None if it was not."""
        if partition.name not in self._checked:
            self._checked.add(partition.name)
            if self._never_written(partition.name):
                partition.fresh = _fresh_name(self.conn, partition.name)
                self.conn.execute(text(
                    f'CREATE TABLE "{partition.fresh}" '
                    "(LIKE incident INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        return partition.fresh

    def _never_written(self, table: str) -> bool:
        """True if no row was ever written to ``table``: its heap has no page. Unlike a query
        this sees rows whatever the transaction's snapshot (repeatable read, serializable),
        and rows deleted since count as written, which errs on the safe side."""
        return self.conn.execute(text("SELECT pg_relation_size(CAST(:t AS regclass)) = 0"),
                                 {"t": f'"{table}"'}).scalar_one()

    def _copy(self, table: str, data: pa.Table) -> None:
        """COPY ``data`` into the same-named columns of ``table``, as CSV."""
        into_parent = table == "incident"
        if into_parent:
            self.conn.execute(text("SET LOCAL gridgov.preassigned = 'on'"))
        cursor = self.conn.connection.driver_connection.cursor()
        with cursor.copy(f'COPY "{table}" ({", ".join(data.column_names)}) '
                         "FROM STDIN (FORMAT csv)") as copy:
            copy.write(_to_csv(data))
        if into_parent:
            self.conn.execute(text("SET LOCAL gridgov.preassigned = 'off'"))

    # -- finishing -------------------------------------------------------------------------------
    def finish(self) -> FinishReport:
        """Swap the fresh tables in as their partitions, or pour them into ``incident``.

        Everything slow happens before the exclusive lock: small tables are poured, the others
        indexed and analysed. Then all are swapped under one lock, which the caller's commit
        releases. A partition written meanwhile is found under the lock; the lock is then given
        back (rollback to the savepoint), that table poured, and the others tried again.
        """
        report = FinishReport()
        waiting = [p for p in self.partitions if p.fresh is not None]
        for partition in [p for p in waiting if p.rows < self.swap_min_rows]:
            self._pour(partition, report)
        waiting = [p for p in waiting if p.fresh is not None]
        for partition in waiting:
            self._ready_to_attach(partition)
        while waiting:
            written = self._swap_all(waiting)
            if written is None:  # the lock was not granted: nothing swapped
                break
            if not written:
                report.swapped += [p.name for p in waiting]
                for partition in waiting:
                    partition.fresh = None
                waiting = []
            for partition in written:
                self._pour(partition, report)
            waiting = [p for p in waiting if p.fresh is not None]
        for partition in waiting:
            self._pour(partition, report)
        return report

    def _pour(self, partition: Partition, report: FinishReport) -> None:
        columns = ", ".join(STORED_COLUMNS)
        self.conn.execute(text("SET LOCAL gridgov.preassigned = 'on'"))
        self.conn.execute(text(f'INSERT INTO incident ({columns}, created_at) '
                               f'SELECT {columns}, created_at FROM "{partition.fresh}"'))
        self.conn.execute(text("SET LOCAL gridgov.preassigned = 'off'"))
        self.conn.execute(text(f'DROP TABLE "{partition.fresh}"'))
        report.poured.append(partition.fresh)
        partition.fresh = None

    def _ready_to_attach(self, partition: Partition) -> None:
        """Indexes, constraints (a CHECK of the bound, so ATTACH need not scan) and statistics
        on the fresh table: the slow part of a swap, done before any lock."""
        lower, upper = partition.lower_literal, partition.upper_literal
        self._build_like_parent(partition.fresh)
        self.conn.execute(text(
            f'ALTER TABLE "{partition.fresh}" ADD CONSTRAINT "{partition.fresh}_bound" CHECK '
            f"(reported_at IS NOT NULL AND reported_at >= '{lower}' AND reported_at < '{upper}')"))
        self.conn.execute(text(f'ANALYZE "{partition.fresh}"'))

    def _swap_all(self, partitions: list[Partition]) -> list[Partition] | None:
        """Under an exclusive lock on ``incident``, put each fresh table in its partition's
        place. Returns [] when done; the partitions written to meanwhile (nothing swapped, lock
        given back); or None if the lock was not granted within ``lock_timeout``."""
        savepoint = self.conn.begin_nested()
        try:
            self.conn.execute(text(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}"))
            self.conn.execute(text("LOCK TABLE incident IN ACCESS EXCLUSIVE MODE"))
            self.conn.execute(text("SET LOCAL lock_timeout = DEFAULT"))
            written = [p for p in partitions if not self._never_written(p.name)]
            if written:
                savepoint.rollback()
                return written
            for partition in partitions:
                self._swap(partition.fresh, partition.name, partition.bound)
        except OperationalError as exc:  # busy, or caught in a deadlock: give way
            if not isinstance(exc.orig, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected):
                raise
            savepoint.rollback()
            return None
        savepoint.commit()
        return []

    def _swap(self, fresh: str, old: str, bound: str) -> None:
        self.conn.execute(text(f'ALTER TABLE incident DETACH PARTITION "{old}"'))
        self.conn.execute(text(f'DROP TABLE "{old}"'))
        self.conn.execute(text(f'ALTER TABLE "{fresh}" RENAME TO "{old}"'))
        self.conn.execute(text(f'ALTER TABLE incident ATTACH PARTITION "{old}" {bound}'))
        self.conn.execute(text(f'ALTER TABLE "{old}" DROP CONSTRAINT "{fresh}_bound"'))
        for (index,) in self.conn.execute(text(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = CAST(:t AS regclass)"), {"t": old}).all():
            name = index.strip('"')
            if name.startswith(fresh):
                self.conn.execute(text(f'ALTER INDEX "{name}" RENAME TO '
                                       f'"{old}{name[len(fresh):]}"'))

    def _build_like_parent(self, table: str) -> None:
        """The parent's primary key, indexes and foreign keys on ``table``, so that ATTACH
        adopts them instead of building or validating anything under the lock."""
        for definition, constraint in self.conn.execute(text(
            """
            SELECT pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
            FROM pg_index i
            LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
            WHERE i.indrelid = 'incident'::regclass
            ORDER BY i.indisprimary DESC, i.indexrelid
            """
        )).all():
            if constraint is not None:
                self.conn.execute(text(f'ALTER TABLE "{table}" ADD {constraint}'))
                continue
            match = re.match(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$",
                             definition)
            if match is None:
                raise RuntimeError(f"cannot mirror the index {definition!r}")
            self.conn.execute(text(f'CREATE {match[1] or ""}INDEX ON "{table}" {match[2]}'))
        for name, definition in self.conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'incident'::regclass AND contype = 'f'")).all():
            self.conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))


def bulk_insert(conn: Connection, rows: pd.DataFrame, batch_id: int | None = None) -> BulkResult:
    """A one-chunk ``BulkLoad``: write ``rows`` and finish, inside the caller's transaction."""
    load = BulkLoad(conn, batch_id)
    result = load.write(rows)
    load.finish()
    return result


# -- helpers -------------------------------------------------------------------------------------
def _may_swap(conn: Connection) -> bool:
    """Whether this role may build tables beside ``incident`` and swap them in: that takes
    owning ``incident`` (DETACH/ATTACH) and creating tables in its schema. A role that may
    only insert loads in place."""
    return conn.execute(text(
        """
        SELECT pg_has_role(c.relowner, 'USAGE') AND has_schema_privilege(c.relnamespace, 'CREATE')
        FROM pg_class c WHERE c.oid = 'incident'::regclass
        """
    )).scalar_one()


def _range_partitions(conn: Connection) -> list[Partition]:
    """The ``incident`` partitions with a plain timestamp range, sorted by their start."""
    out = []
    for name, bound, lower, upper, lower_literal, upper_literal in conn.execute(text(
        """
        SELECT c.relname, b.bound,
               (extract(epoch FROM CAST(m[1] AS timestamptz)) * 1e6)::bigint,
               (extract(epoch FROM CAST(m[2] AS timestamptz)) * 1e6)::bigint, m[1], m[2]
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
        CROSS JOIN LATERAL (SELECT regexp_match(b.bound,
            '^FOR VALUES FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)$') AS m) r
        WHERE i.inhparent = 'incident'::regclass AND c.relkind = 'r' AND r.m IS NOT NULL
        ORDER BY 3
        """
    )).all():
        out.append(Partition(name, bound, int(lower), int(upper), lower_literal, upper_literal))
    return out


def _fresh_name(conn: Connection, partition: str) -> str:
    """A name for the table built beside ``partition``, unique to this backend."""
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return f"{partition}_load_{pid}"


def _utc_micros(values: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) per row; naive times are taken as UTC."""
    parsed = pd.to_datetime(values, utc=True)
    if parsed.isna().any():
        raise ValueError(f"reported_at is missing in row {int(np.argmax(parsed.isna()))}")
    return parsed.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


def _incident_table(rows: pd.DataFrame, ids: np.ndarray, at: np.ndarray,
                    batch_id: int | None) -> pa.Table:
    """The chunk as ``STORED_COLUMNS``, built once: the claims, the NUL check and every COPY
    read it."""
    n = len(rows)
    lon, lat = (rows[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in ("lon", "lat"))
    table = pa.table({
        "id": pa.array(ids, type=pa.int64()),
        "reported_at": _timestamps(at),
        "source": _strings(rows["source"]),
        "source_key": _strings(rows["source_key"]),
        "class_code": _strings(rows["class_code"]),
        "description": _strings(rows["description"].fillna("")),
        "geom": _ewkb_points(lon, lat),
        "orig_x": _floats(rows["orig_x"]),
        "orig_y": _floats(rows["orig_y"]),
        "orig_crs": _strings(rows["orig_crs"]),
        "location_status": _strings(rows["location_status"]),
        "generation_id": _ints(rows["generation_id"]),
        "grid_id": _ints(rows["grid_id"]),
        "community_id": _ints(rows["community_id"]),
        "street_id": _ints(rows["street_id"]),
        "batch_id": pa.array(np.full(n, batch_id or 0), mask=np.full(n, batch_id is None),
                             type=pa.int64()),
    })  # fmt: skip
    return table


def _refuse_nul(table: pa.Table, row_number: pd.Series) -> None:
    """PostgreSQL text cannot hold NUL: say which row and column carries one."""
    for column in ("source", "source_key", "class_code", "description", "orig_crs"):
        nul = pc.fill_null(pc.match_substring(table[column], "\x00"), False)
        if pc.any(nul).as_py():
            row = row_number.iloc[int(np.argmax(nul.to_numpy(zero_copy_only=False)))]
            raise ValueError(f"row {row}: {column} contains a NUL character, which "
                             "PostgreSQL text cannot hold")


def _to_csv(table: pa.Table) -> bytes:
    """CSV as COPY reads it: strings quoted, NULL as an empty unquoted field."""
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def _timestamps(micros: np.ndarray) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS.ffffff+00`` per value (UTC microseconds), spelled digit by digit
    with numpy: Arrow's own timestamp formatting costs about 2 µs a value, this 0.1 µs."""
    at = micros.astype("datetime64[us]")
    day, month = at.astype("datetime64[D]"), at.astype("datetime64[M]")
    year = at.astype("datetime64[Y]").astype(np.int64) + 1970
    if len(at) and (year.min() < 1000 or year.max() > 9999):
        return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    of_day = micros - day.astype("datetime64[us]").astype(np.int64)
    parts = [
        (year, 4), "-", (month.astype(np.int64) % 12 + 1, 2), "-",
        ((day - month.astype("datetime64[D]")).astype(np.int64) + 1, 2), " ",
        (of_day // 3_600_000_000, 2), ":", (of_day // 60_000_000 % 60, 2), ":",
        (of_day // 1_000_000 % 60, 2), ".", (of_day % 1_000_000, 6), "+00",
    ]  # fmt: skip
    return _fixed_width_text(parts, len(at))


def _ewkb_points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """Hex EWKB of SRID-4490 points (NULL where a coordinate is not finite), built as bytes
    with numpy: ``shapely.to_wkb(..., hex=True)`` is ten times slower."""
    record = np.zeros(len(lon), dtype=[("head", "S9"), ("x", "<f8"), ("y", "<f8")])
    record["head"] = b"\x01\x01\x00\x00\x20" + SRID.to_bytes(4, "little")  # point, has SRID
    record["x"], record["y"] = lon, lat
    text_bytes = record.tobytes().hex().upper().encode("ascii")
    located = np.isfinite(lon) & np.isfinite(lat)
    return _strings_from_buffer(text_bytes, len(lon), 50, located)


def _fixed_width_text(parts: list, n: int) -> pa.Array:
    """Strings of one width from literal pieces and (values, digits) zero-padded numbers."""
    width = sum(len(p) if isinstance(p, str) else p[1] for p in parts)
    out = np.empty((n, width), dtype=np.uint8)
    column = 0
    for part in parts:
        if isinstance(part, str):
            out[:, column:column + len(part)] = np.frombuffer(part.encode("ascii"), np.uint8)
            column += len(part)
            continue
        values, digits = part
        for k in range(digits):
            out[:, column + k] = values // 10 ** (digits - 1 - k) % 10 + ord("0")
        column += digits
    return _strings_from_buffer(out.tobytes(), n, width)


def _strings_from_buffer(data: bytes, n: int, width: int,
                         valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string array over ``n`` consecutive ``width``-byte ASCII strings, no copies."""
    offsets = pa.py_buffer(np.arange(0, width * n + 1, width, dtype=np.int64))
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.LargeStringArray.from_buffers(n, offsets, pa.py_buffer(data), bitmap)


def _strings(values: pd.Series) -> pa.Array:
    return pa.array(values, type=pa.string(), from_pandas=True)  # None and NaN become NULL


def _floats(values: pd.Series) -> pa.Array:
    number = pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    return pa.array(number, mask=~np.isfinite(number), type=pa.float64())


def _ints(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("Int64"), type=pa.int64())
