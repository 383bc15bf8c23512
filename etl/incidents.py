"""Bulk import of incident files: read, map, validate, convert, assign, load in one transaction.

Formats
    CSV (UTF-8 with or without BOM, GBK/GB18030: detected, or ``encoding``), GeoJSON,
    GeoPackage (``layer``), Parquet (coordinate columns) and GeoParquet (WKB geometry column).
    Files with point geometry use it; tabular files use coordinate columns. Every format is read
    in chunks of ``chunk_size`` rows, so memory stays bounded however long the file is.

Columns
    Each standard column (``STANDARD_FIELDS``) is taken from the column named by ``mapping``, or
    else from the first usual name found (``COLUMN_CANDIDATES``, case-insensitive). An optional
    ``crs`` column gives a per-row CRS that overrides the file's (used for rows taken from a
    GCJ-02 or BD-09 web map).

Row numbers
    1-based numbers of data rows. In a CSV the header is not counted, blank lines are skipped and
    a quoted value spanning several lines still makes one row, so row 1 is usually line 2.
    In the other formats row N is the N-th feature or record.

Times
    Parsed with their time zone; a time without one is local time in ``timezone`` (default
    Asia/Shanghai, +08:00). Unparseable times and times before 1990 or more than a day in the
    future are rejected.

Coordinates
    Converted to CGCS2000 (``gis.crs``). A row whose point falls outside the district's bounding
    box (buffered by ``BBOX_BUFFER_DEG``) but inside it with x and y exchanged is swapped and
    counted. A point outside the district is loaded with location status ``outside``; rows with
    missing or impossible coordinates are rejected (or, with ``keep_invalid``, loaded as
    ``invalid``). Rows are assigned in memory (``gis.assign.GridIndex``) on the active generation.

Rejects and duplicates
    Each row that cannot be loaded goes to ``incident_reject`` (row number, field, reason, raw
    JSON of the original row) and to a rejects CSV (row number, field, reason + the original
    columns). A row whose ``(source, source_key)`` is already stored, or repeated earlier in the
    file, is quarantined the same way as "duplicate of incident N"; so always
    ``loaded + duplicates + rejected = rows read`` and a re-run loads nothing twice.
    A row without a source key gets a derived one, ``sha1:`` + SHA-1 of its normalised content
    (source, class, UTC time, CGCS2000 lon/lat to 1e-7 degree, description), unless ``dedupe`` is
    off. The file's checksum is not used for this: the same reports exported again in another
    file, or in another order, are still recognised. Two reports identical in all of those are
    taken to be one.

All or nothing
    The batch row, the incidents (COPY through ``gis.bulk_load.BulkLoad``, chunk by chunk; an
    empty yearly partition is built aside and swapped in at the end) and the rejects are written
    in one transaction: an error or a killed process leaves nothing. A dry run does all of it
    and rolls back, so its counts (duplicates included) are exact.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS
from sqlalchemy import Connection, Engine, text

from gis.assign import GridIndex
from gis.assign_dask import grid_index
from gis.boundaries import active_generation_id, read_generation
from gis.bulk_load import BulkLoad
from gis.crs import normalise_crs, to_cgcs2000
from gis.incidents import grid_chain_ids, known_class_codes
from gis.models import SOURCES

STANDARD_FIELDS = ("source_key", "class_code", "description", "reported_at", "x", "y", "source",
                   "crs")
REQUIRED_FIELDS = ("class_code", "reported_at")
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "source_key": ("source_key", "key", "id", "case_id", "case_no", "编号", "案件编号", "案卷号"),
    "class_code": ("class_code", "class", "classcode", "category", "类别编码", "类别代码",
                   "小类编码", "类别"),
    "description": ("description", "desc", "描述", "问题描述", "内容"),
    "reported_at": ("reported_at", "time", "datetime", "timestamp", "report_time", "reported",
                    "上报时间", "时间", "发生时间"),
    "x": ("x", "lon", "lng", "long", "longitude", "经度"),
    "y": ("y", "lat", "latitude", "纬度"),
    "source": ("source", "来源", "渠道"),
    "crs": ("crs", "坐标系"),
}
#: Usual spellings of the sources in Chinese exports.
SOURCE_ALIASES = {"网格员": "grid_worker", "热线": "hotline", "12345": "hotline",
                  "12345热线": "hotline", "视频巡查": "video_patrol", "批量导入": "bulk_import"}
MAX_SOURCE_KEY = 200  # incident.source_key is varchar(200)
MAX_DESCRIPTION = 4000  # longer descriptions are almost always pasted garbage
MAX_HEADER_CHARS = 1 << 20  # a CSV header line longer than this is not a header
NUL = "\x00"  # PostgreSQL text cannot hold it: a row carrying one is quarantined
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
BBOX_BUFFER_DEG = 0.01  # ~1 km around the district for the swapped lat/lon test
DEFAULT_CHUNK = 100_000
GEOGRAPHIC = ("wgs84", "cgcs2000", "gcj02", "bd09")


class ImportFileError(Exception):
    """The file itself cannot be read as asked; the message names the file and the reason."""


class ImportSetupError(Exception):
    """The database is not ready for an import (no active generation, no class catalogue)."""


@dataclass(frozen=True)
class ImportOptions:
    """How to read and load a file; ``to_json`` is stored with the batch."""

    mapping: dict[str, str] = field(default_factory=dict)
    source: str = "bulk_import"
    crs: str | None = None
    timezone: str = "Asia/Shanghai"
    encoding: str | None = None
    layer: str | None = None
    delimiter: str | None = None
    dedupe: bool = True
    keep_invalid: bool = False
    dry_run: bool = False
    chunk_size: int = DEFAULT_CHUNK
    rejects: Path | None = None
    engine: str = "memory"  # the assignment engine: "memory" or "dask" (gis.assign_dask)
    scheduler: str | None = None  # a Dask scheduler address; default a local cluster

    def __post_init__(self) -> None:
        unknown = set(self.mapping) - set(STANDARD_FIELDS)
        if unknown:
            raise ValueError(f"unknown standard column(s) {', '.join(sorted(unknown))}; "
                             f"expected {', '.join(STANDARD_FIELDS)}")
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")
        if self.crs is not None:
            normalise_crs(self.crs)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if self.chunk_size < 1:
            raise ValueError("chunk size must be positive")

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["x=经度", "y=纬度"]`` → ``{"x": "经度", "y": "纬度"}``; ValueError on a bad pair."""
    mapping = {}
    for pair in pairs:
        standard, sep, column = pair.partition("=")
        if not sep or not standard.strip() or not column.strip():
            raise ValueError(f"--map expects STANDARD=COLUMN, got {pair!r}")
        mapping[standard.strip()] = column.strip()
    return mapping


# -- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Malformed:
    """A CSV line that could not be split into the header's columns."""

    row: int
    text: str
    reason: str


@dataclass
class Batch:
    """A chunk of rows as read: numbers, original columns, geometries, unsplittable lines."""

    rows: np.ndarray
    frame: pd.DataFrame
    geoms: np.ndarray | None = None
    malformed: list[Malformed] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


class Reader:
    """A source of rows in chunks; ``total`` (rows, maybe estimated) sizes the progress bar."""

    fmt: str = ""
    name: str = ""
    encoding: str | None = None
    crs: str | None = None  # the file's own CRS, normalised, if it declares one
    has_geometry: bool = False
    columns: list[str]
    checksum: str = ""
    total: int | None = None

    def batches(self, size: int) -> Iterator[Batch]:
        raise NotImplementedError


def file_scan(path: Path, check_utf8: bool) -> tuple[str, bool, int]:
    """SHA-256 of the file, whether all of it decodes as UTF-8 (if asked) and its number of
    newlines (a row estimate for the progress bar), in one pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")() if check_utf8 else None
    utf8, newlines = check_utf8, 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            newlines += block.count(b"\n")
            if decoder is not None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8, decoder = False, None
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return digest.hexdigest(), utf8, newlines


class CsvReader(Reader):
    """Streaming CSV through pyarrow: every column read as text, exactly as in the file."""

    fmt = "csv"

    def __init__(self, path: Path, encoding: str | None, delimiter: str | None) -> None:
        self.path, self.name = path, str(path)
        self.checksum, utf8, newlines = file_scan(path, check_utf8=encoding is None)
        if encoding is None:
            encoding = "utf-8" if utf8 else "gb18030"
        elif encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig", "utf8"):
            encoding = "utf-8"  # pyarrow skips a UTF-8 BOM itself
        self.encoding = encoding
        self.delimiter, self.columns = self._header(delimiter)
        self.total = max(newlines, 1)  # header and quoted newlines make it a slight overestimate
        self._bad: list[Malformed] = []

    def _header(self, delimiter: str | None) -> tuple[str, list[str]]:
        try:
            # a bounded read: a file without line breaks must not be read whole as a "line"
            with open(self.path, encoding=_python_codec(self.encoding), newline="") as handle:
                head = handle.read(MAX_HEADER_CHARS + 1)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportFileError(f"{self.path}: cannot decode as {self.encoding}: {exc}") from exc
        if len(head) > MAX_HEADER_CHARS and not re.search(r"[\r\n]", head):
            raise ImportFileError(f"{self.path}: no line break in the first "
                                  f"{MAX_HEADER_CHARS:,} characters: not a CSV file")
        first = re.split(r"\r\n|\r|\n", head, maxsplit=1)[0]
        if delimiter is None:
            delimiter = max(",\t;|", key=first.count) if first.strip() else ","
        try:
            header = next(csv.reader(io.StringIO(head), delimiter=delimiter), None)
        except csv.Error as exc:
            raise ImportFileError(f"{self.path}: the header line cannot be read: {exc}") from exc
        if not header or not any(h.strip() for h in header):
            raise ImportFileError(f"{self.path}: empty file (no header line)")
        header = [h.lstrip("\ufeff") for h in header]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise ImportFileError(f"{self.path}: repeated column name(s) {', '.join(repeated)}")
        return delimiter, header

    def _invalid_row(self, row) -> str:
        reason = f"malformed line: expected {row.expected_columns} fields, saw {row.actual_columns}"
        self._bad.append(Malformed(int(row.number) - 1, row.text, reason))  # number counts header
        return "skip"

    def _stream(self) -> pa.RecordBatchReader:
        import pyarrow.csv as pacsv

        return pacsv.open_csv(
            str(self.path),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 22,
                                           encoding=self.encoding),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                              invalid_row_handler=self._invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in self.columns},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    def batches(self, size: int) -> Iterator[Batch]:
        cursor = 1
        try:
            for table in _rechunk(self._stream(), size):
                rows = _good_rows(cursor, table.num_rows, self._bad)
                cursor = int(rows[-1]) + 1 if len(rows) else cursor
                yield Batch(rows, table.to_pandas(), malformed=self._take_bad(rows))
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise ImportFileError(f"{self.path}: cannot read as CSV ({self.encoding}): "
                                  f"{exc}") from exc
        if self._bad:
            yield Batch(np.zeros(0, np.int64), pd.DataFrame(columns=self.columns),
                        malformed=self._take_bad(None))

    def _take_bad(self, rows: np.ndarray | None) -> list[Malformed]:
        """The malformed lines up to the last row of this chunk (all when ``rows`` is None)."""
        last = int(rows[-1]) if rows is not None and len(rows) else None
        if rows is not None and last is None:
            return []
        taken = [m for m in self._bad if last is None or m.row <= last]
        self._bad = [m for m in self._bad if m not in taken]
        return taken


def _python_codec(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding


def _good_rows(cursor: int, n: int, bad: Sequence[Malformed]) -> np.ndarray:
    """The ``n`` row numbers from ``cursor`` on that are not malformed lines."""
    skip = np.array(sorted(m.row for m in bad if m.row >= cursor), dtype=np.int64)
    candidates = np.arange(cursor, cursor + n + len(skip), dtype=np.int64)
    return candidates[~np.isin(candidates, skip)][:n]


def _rechunk(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from record batches of any size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


class ArrowReader(Reader):
    """Shared part of the Parquet and OGR readers: record batches with an optional WKB column."""

    geometry_column: str | None = None

    def _record_batches(self, size: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def batches(self, size: int) -> Iterator[Batch]:
        cursor = 1
        try:
            for table in _rechunk(self._record_batches(size), size):
                yield self._batch(table, cursor)
                cursor += table.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise ImportFileError(f"{self.name}: cannot read: {exc}") from exc

    def _batch(self, table: pa.Table, cursor: int) -> Batch:
        geoms = None
        if self.geometry_column is not None:
            wkb = table.column(self.geometry_column).to_numpy(zero_copy_only=False)
            geoms = shapely.from_wkb(wkb, on_invalid="ignore")
            table = table.drop_columns([self.geometry_column])
        rows = np.arange(cursor, cursor + table.num_rows, dtype=np.int64)
        return Batch(rows, table.select(self.columns).to_pandas(), geoms)


class ParquetReader(ArrowReader):
    """Parquet, plain or GeoParquet (WKB geometry named in the ``geo`` metadata)."""

    fmt = "parquet"

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path, self.name = path, str(path)
        self.checksum = file_scan(path, check_utf8=False)[0]
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ImportFileError(f"{path}: not a readable Parquet file: {exc}") from exc
        self.total = self._file.metadata.num_rows
        names = self._file.schema_arrow.names
        self._geo_metadata(names)
        self.columns = [c for c in names if c != self.geometry_column]

    def _geo_metadata(self, names: list[str]) -> None:
        raw = (self._file.schema_arrow.metadata or {}).get(b"geo")
        if raw is None:
            return
        geo = json.loads(raw)
        column = geo.get("primary_column")
        spec = geo.get("columns", {}).get(column, {})
        if column not in names:
            raise ImportFileError(f"{self.path}: GeoParquet geometry column {column!r} missing")
        if spec.get("encoding", "WKB").upper() != "WKB":
            raise ImportFileError(f"{self.path}: geometry encoding {spec['encoding']!r} is not "
                                  "supported (write it as WKB)")
        self.fmt, self.geometry_column, self.has_geometry = "geoparquet", column, True
        crs = spec.get("crs", "OGC:CRS84")  # absent means lon/lat WGS84 by the spec
        self.crs = None if crs is None else _crs_name(CRS.from_user_input(crs), self.path)

    def _record_batches(self, size: int) -> Iterator[pa.RecordBatch]:
        return self._file.iter_batches(batch_size=size)


class OgrReader(ArrowReader):
    """GeoJSON, GeoPackage (one layer) and anything else GDAL reads, streamed as Arrow."""

    def __init__(self, path: Path, layer: str | None) -> None:
        import pyogrio

        self.path, self.name = path, str(path)
        self.fmt = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson"}.get(
            path.suffix.lower(), path.suffix.lower().lstrip("."))
        self.checksum = file_scan(path, check_utf8=False)[0]
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
            if layer is None and len(layers) > 1:
                raise ImportFileError(f"{path}: has layers {', '.join(layers)}; "
                                      "choose one with --layer")
            if layer is not None and layer not in layers:
                raise ImportFileError(f"{path}: no layer {layer!r}; layers are "
                                      f"{', '.join(layers)}")
            info = pyogrio.read_info(path, layer=layer)
        except pyogrio.errors.DataSourceError as exc:
            raise ImportFileError(f"{path}: not a readable {self.fmt} file: {exc}") from exc
        self.layer = layer
        self.total = int(info.get("features") or 0) or None
        self.columns = [str(c) for c in info["fields"]]
        self.has_geometry = info.get("geometry_type") is not None
        self.crs = _crs_name(CRS.from_user_input(info["crs"]), path) if info.get("crs") else None
        if self.has_geometry and self.crs is None and self.fmt == "geojson":
            self.crs = "wgs84"  # RFC 7946

    def _record_batches(self, size: int) -> Iterator[pa.RecordBatch]:
        import pyogrio

        with pyogrio.open_arrow(self.path, layer=self.layer, batch_size=size, use_pyarrow=True,
                                datetime_as_string=True) as (meta, stream):
            if self.has_geometry:
                self.geometry_column = meta["geometry_name"] or "wkb_geometry"
            yield from stream


class FrameReader(Reader):
    """Rows already in memory (the simulator): read like a file, no geometry column."""

    fmt = "frame"

    def __init__(self, frame: pd.DataFrame, name: str, crs: str | None = None) -> None:
        self.frame = frame.reset_index(drop=True)
        self.name, self.crs = name, normalise_crs(crs) if crs else None
        self.columns = [str(c) for c in frame.columns]
        self.total = len(frame)
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        self.checksum = hashlib.sha256(hashed.tobytes()).hexdigest()

    def batches(self, size: int) -> Iterator[Batch]:
        for start in range(0, len(self.frame), size):
            chunk = self.frame.iloc[start:start + size].reset_index(drop=True)
            yield Batch(np.arange(start + 1, start + 1 + len(chunk), dtype=np.int64), chunk)


def _crs_name(crs: CRS, path: Path | str) -> str:
    """A pyproj CRS as a ``gis.crs`` name (wgs84, cgcs2000, EPSG:n)."""
    if crs.to_string() in ("OGC:CRS84", "OGC:CRS84h"):
        return "wgs84"
    epsg = crs.to_epsg(min_confidence=70)
    if epsg is None:
        raise ImportFileError(f"{path}: its CRS has no EPSG code ({crs.name}); pass --crs")
    return normalise_crs(f"EPSG:{epsg}")


def open_reader(path: Path, options: ImportOptions) -> Reader:
    """The reader for ``path`` by its extension; ImportFileError when it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise ImportFileError(f"{path}: not readable (permission denied)")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return CsvReader(path, options.encoding, options.delimiter or
                         ("\t" if suffix == ".tsv" else None))
    if suffix in (".parquet", ".geoparquet", ".pq"):
        return ParquetReader(path)
    if suffix in (".geojson", ".json", ".gpkg", ".shp", ".fgb"):
        return OgrReader(path, options.layer)
    raise ImportFileError(f"{path}: unsupported format {suffix or '(no extension)'}; expected "
                          ".csv, .geojson, .gpkg, .parquet")


# -- the plan: what is fixed before the first row ------------------------------------------------
@dataclass
class Plan:
    columns: dict[str, str | None]
    use_geometry: bool
    crs: str
    timezone: str
    source: str
    classes: frozenset[str]
    generation_id: int
    index: GridIndex
    chain: np.ndarray  # (len(index.codes), 3): grid, community, street id per index position
    bbox: tuple[float, float, float, float]
    dedupe: bool
    keep_invalid: bool
    latest: datetime


def resolve_columns(reader: Reader, mapping: dict[str, str]) -> tuple[dict[str, str | None], bool]:
    """Source column per standard column, and whether coordinates come from the geometry."""
    by_lower = {c.strip().lower(): c for c in reader.columns}
    resolved: dict[str, str | None] = {}
    for standard in STANDARD_FIELDS:
        if standard in mapping:
            if mapping[standard] not in reader.columns:
                raise ImportFileError(
                    f"{reader.name}: no column {mapping[standard]!r} for {standard}; columns "
                    f"are {', '.join(reader.columns)}")
            resolved[standard] = mapping[standard]
        else:
            resolved[standard] = next((by_lower[c] for c in COLUMN_CANDIDATES[standard]
                                       if c in by_lower), None)
    use_geometry = reader.has_geometry and not ("x" in mapping and "y" in mapping)
    required = REQUIRED_FIELDS if use_geometry else (*REQUIRED_FIELDS, "x", "y")
    missing = [s for s in required if resolved[s] is None]
    if missing:
        raise ImportFileError(
            f"{reader.name}: no column for {', '.join(missing)}; columns are "
            f"{', '.join(reader.columns)} (name one with --map {missing[0]}=COLUMN)")
    if use_geometry:
        resolved["x"] = resolved["y"] = None
    return resolved, use_geometry


def make_plan(engine: Engine, reader: Reader, options: ImportOptions) -> Plan:
    columns, use_geometry = resolve_columns(reader, options.mapping)
    with engine.connect() as conn:
        generation_id = active_generation_id(conn)
        if generation_id is None:
            raise ImportSetupError("no generation is active; run `gridgov boundaries load`")
        classes = frozenset(known_class_codes(conn))
        if not classes:
            raise ImportSetupError("the class catalogue is empty; run `gridgov catalogues load`")
        chain_by_code = grid_chain_ids(conn, generation_id)
    grids = read_generation(engine, generation_id)["grid"]
    index = grid_index(grids, options.engine, options.scheduler)
    chain = np.array([chain_by_code[str(c)] for c in index.codes], dtype=np.int64).reshape(-1, 3)
    minx, miny, maxx, maxy = grids.total_bounds
    b = BBOX_BUFFER_DEG
    return Plan(columns=columns, use_geometry=use_geometry,
                crs=normalise_crs(options.crs) if options.crs else (reader.crs or "wgs84"),
                timezone=options.timezone, source=options.source, classes=classes,
                generation_id=generation_id, index=index, chain=chain,
                bbox=(minx - b, miny - b, maxx + b, maxy + b), dedupe=options.dedupe,
                keep_invalid=options.keep_invalid,
                latest=datetime.now(UTC) + timedelta(days=1))


# -- validating and converting a chunk -----------------------------------------------------------
class Rejections:
    """First failure per row: field, reason kind (for the summary) and full reason."""

    def __init__(self, n: int) -> None:
        self.rejected = np.zeros(n, dtype=bool)
        self.field = np.full(n, None, dtype=object)
        self.kind = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def flag(self, mask: np.ndarray, field_name: str, kind: str,
             values: Sequence | np.ndarray | None = None) -> None:
        idx = np.flatnonzero(np.asarray(mask, dtype=bool) & ~self.rejected)
        if not len(idx):
            return
        self.rejected[idx] = True
        self.field[idx] = field_name
        self.kind[idx] = kind
        if values is None:
            self.reason[idx] = kind
        else:
            shown = np.asarray(values, dtype=object)[idx]
            self.reason[idx] = [f"{kind}: {_show(v)}" for v in shown]


def _show(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


@dataclass
class Problem:
    """Rows failing one check, before it is decided whether that rejects them."""

    mask: np.ndarray
    field: str
    kind: str
    values: np.ndarray | None = None


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """A column as stripped strings ('' for missing) in an object array."""
    if column is None:
        return np.full(len(frame), "", dtype=object)
    values = frame[column]
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        values = values.astype("string")
    return values.fillna("").astype(str).str.strip().to_numpy(dtype=object)


def _text_where(frame: pd.DataFrame, column: str, mask: np.ndarray) -> np.ndarray:
    """``_text`` of the masked rows only (None elsewhere): quoting a few bad values must not
    cost formatting a whole column of parsed times."""
    out = np.full(len(frame), None, dtype=object)
    if mask.any():
        out[mask] = _text(frame.iloc[np.flatnonzero(mask)], column)
    return out


def _numbers(frame: pd.DataFrame, column: str, name: str) -> tuple[np.ndarray, list[Problem]]:
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        number = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return number, [Problem(np.isnan(number), name, "missing")]
    raw = _text(frame, column)
    number = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(np.float64)
    missing = raw == ""
    nan = np.isnan(number)
    spelled_nan = _isin(_series(raw).str.lower().to_numpy(object), ("nan", "+nan", "-nan"))
    return number, [Problem(missing, name, "missing"),
                    Problem(nan & ~spelled_nan, name, "not a number", raw)]


def _geometry_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    kind = shapely.get_type_id(geoms)
    missing = (kind < 0) | shapely.is_empty(geoms)
    point = (kind == 0) & ~missing
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    x[point] = shapely.get_x(geoms[point])
    y[point] = shapely.get_y(geoms[point])
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"], dtype=object)
    return x, y, [Problem(missing, "geometry", "missing"),
                  Problem(~point & ~missing, "geometry", "not a point", names[np.maximum(kind, 0)])]


def _crs_per_row(raw: np.ndarray, default: str) -> tuple[np.ndarray, Problem]:
    """Normalised CRS per row (``default`` where empty); unknown names are a problem."""
    out = np.full(len(raw), default, dtype=object)
    bad = np.zeros(len(raw), dtype=bool)
    for value in pd.unique(raw):
        if value == "":
            continue
        hit = raw == value
        try:
            out[hit] = normalise_crs(value)
        except ValueError:
            bad |= hit
    return out, Problem(bad, "crs", "unknown CRS", raw)


def _convert(x: np.ndarray, y: np.ndarray, crs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CGCS2000 lon/lat, one vectorised conversion per distinct CRS."""
    lon = np.full(len(x), np.nan)
    lat = np.full(len(x), np.nan)
    for name in pd.unique(crs):
        hit = crs == name
        lon[hit], lat[hit] = to_cgcs2000(x[hit], y[hit], name)
    return lon, lat


def _in_box(lon: np.ndarray, lat: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])


@lru_cache(maxsize=32)
def _valid_box(crs: str) -> tuple[float, float, float, float]:
    """Where converted lon/lat may lie for ``crs``: the globe, or a projection's area of use."""
    if crs in GEOGRAPHIC:
        return (-180.0, -90.0, 180.0, 90.0)
    pyproj_crs = CRS.from_user_input(crs)
    area = pyproj_crs.area_of_use
    if pyproj_crs.is_geographic or area is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (area.west, area.south, area.east, area.north)


@dataclass
class Located:
    lon: np.ndarray
    lat: np.ndarray
    orig_x: np.ndarray
    orig_y: np.ndarray
    crs: np.ndarray
    swapped: np.ndarray
    problems: list[Problem]


def locate(batch: Batch, plan: Plan) -> Located:
    """Raw coordinates → CGCS2000, swapping rows whose x and y were exchanged."""
    frame = batch.frame
    crs, crs_problem = _crs_per_row(_text(frame, plan.columns["crs"]), plan.crs)
    if plan.use_geometry:
        x, y, problems = _geometry_xy(batch.geoms)
    else:
        x, px = _numbers(frame, plan.columns["x"], "x")
        y, py = _numbers(frame, plan.columns["y"], "y")
        problems = [*px, *py]
    problems = [crs_problem, *problems]
    finite = np.isfinite(x) & np.isfinite(y)
    usable = finite & ~crs_problem.mask
    lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
    lon[usable], lat[usable] = _convert(x[usable], y[usable], crs[usable])
    swapped = _swap(x, y, lon, lat, crs, usable, plan.bbox)
    coordinate = "geometry" if plan.use_geometry else "x"
    nan_given = ~finite & ~np.any([p.mask for p in problems], axis=0)
    problems.append(Problem(nan_given, coordinate, "not finite", _pairs(x, y, nan_given)))
    problems.append(_range_problem(lon, lat, crs, usable, coordinate, x, y))
    return Located(lon, lat, x, y, crs, swapped, problems)


def _swap(x, y, lon, lat, crs, usable, bbox) -> np.ndarray:
    """Swap in place rows outside the box that fall inside it with x and y exchanged."""
    swapped = np.zeros(len(x), dtype=bool)
    test = np.flatnonzero(usable & ~_in_box(lon, lat, bbox))
    if len(test):
        slon, slat = _convert(y[test], x[test], crs[test])
        hit = _in_box(slon, slat, bbox)
        rows = test[hit]
        lon[rows], lat[rows] = slon[hit], slat[hit]
        swapped[rows] = True
    return swapped


def _range_problem(lon, lat, crs, usable, field_name, x, y) -> Problem:
    bad = usable & ~(np.isfinite(lon) & np.isfinite(lat))
    for name in pd.unique(crs[usable]):
        hit = usable & (crs == name)
        bad |= hit & ~_in_box(lon, lat, _valid_box(name))
    return Problem(bad, field_name, "out of range", _pairs(x, y, bad, crs))


def _pairs(x: np.ndarray, y: np.ndarray, mask: np.ndarray,
           crs: np.ndarray | None = None) -> np.ndarray | None:
    """``"(x, y)"`` (and ``" in crs"``) for the masked rows, to quote in reasons."""
    if not mask.any():
        return None
    values = np.full(len(x), None, dtype=object)
    where = [""] * int(mask.sum()) if crs is None else [f" in {c}" for c in crs[mask]]
    values[mask] = [f"({a}, {b}){w}" for a, b, w in zip(x[mask], y[mask], where, strict=True)]
    return values


#: An offset after a time of day (a date alone, "2019-05-06", has none).
_TZ_SUFFIX = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
#: "2019/5/6", "2019.5.6" and "2019年5月6日" become "2019-5-6".
_CHINESE_DATE = r"^(\d{4})\s*[年/.]\s*(\d{1,2})\s*[月/.]\s*(\d{1,2})\s*日?"
_DATE_START = r"^\d{4}-\d{1,2}-\d{1,2}"


def parse_times(values: pd.Series, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC ``datetime64[us]`` per row (NaT when unparseable) and a mask of missing values.

    Times with an offset keep it; naive times are local times in ``timezone``.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        utc = values.dt.tz_convert("UTC")
        return _utc_numpy(utc), values.isna().to_numpy()
    if pd.api.types.is_datetime64_dtype(values):
        return _utc_numpy(_localise(values, timezone)), values.isna().to_numpy()
    raw = pd.Series(_text(values.to_frame("t"), "t"), dtype=object)
    missing = (raw == "").to_numpy()
    normal = raw.str.replace(_CHINESE_DATE, r"\1-\2-\3 ", regex=True).str.strip()
    aware = normal.str.contains(_TZ_SUFFIX, regex=True).to_numpy() & ~missing
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
    if aware.any():
        out[aware] = _to_datetime(normal[aware], utc=True)
    naive = ~aware & ~missing
    if naive.any():
        out[naive] = _localise(_to_datetime(normal[naive], utc=False), timezone)
    return _utc_numpy(out), missing


def _to_datetime(text_values: pd.Series, utc: bool) -> pd.Series:
    """ISO 8601 first (fast); rows failing it but starting with a date get the mixed parser."""
    parsed = pd.to_datetime(text_values, format="ISO8601", errors="coerce", utc=utc)
    parsed = parsed.dt.as_unit("us")
    retry = parsed.isna() & text_values.str.match(_DATE_START).astype(bool)
    if retry.any():
        again = pd.to_datetime(text_values[retry], format="mixed", errors="coerce", utc=utc)
        parsed[retry] = again.dt.as_unit("us")
    return parsed


def _localise(values: pd.Series, timezone: str) -> pd.Series:
    return values.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def _utc_numpy(values: pd.Series) -> np.ndarray:
    return values.dt.tz_localize(None).dt.as_unit("us").to_numpy(dtype="datetime64[us]")


def _sources(raw: np.ndarray, default: str) -> np.ndarray:
    lowered = _series(raw).str.lower().replace(SOURCE_ALIASES).to_numpy(object)
    return np.where(raw == "", default, lowered)


def _series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object)


def _isin(values: np.ndarray, allowed: Iterable) -> np.ndarray:
    """Hash-based membership for object arrays (np.isin would sort them)."""
    return _series(values).isin(set(allowed)).to_numpy(dtype=bool)


def _too_long(values: np.ndarray, limit: int) -> np.ndarray:
    return _series(values).str.len().to_numpy() > limit


@dataclass
class Prepared:
    """A validated, converted and assigned chunk; ``ok`` rows go to COPY."""

    batch: Batch
    rejections: Rejections
    source: np.ndarray
    key: np.ndarray
    class_code: np.ndarray
    description: np.ndarray
    at: np.ndarray
    located: Located
    status: np.ndarray
    chain: np.ndarray  # (n, 3), -1 where unassigned

    @property
    def ok(self) -> np.ndarray:
        return ~self.rejections.rejected

    def bulk_rows(self, generation_id: int) -> pd.DataFrame:
        """The loadable rows as ``gis.bulk_load.BULK_COLUMNS``."""
        ok = np.flatnonzero(self.ok)
        loc = self.located
        located = self.status[ok] != "invalid"
        chain = np.where(self.chain[ok] >= 0, self.chain[ok], -1)
        return pd.DataFrame({
            "row_number": self.batch.rows[ok], "source": self.source[ok],
            "source_key": self.key[ok], "class_code": self.class_code[ok],
            "description": self.description[ok],
            "reported_at": pd.to_datetime(self.at[ok]).tz_localize("UTC"),
            "lon": np.where(located, loc.lon[ok], np.nan),
            "lat": np.where(located, loc.lat[ok], np.nan),
            "orig_x": loc.orig_x[ok], "orig_y": loc.orig_y[ok], "orig_crs": loc.crs[ok],
            "location_status": self.status[ok],
            "generation_id": _ids(np.where(located, generation_id, -1)),
            **{name: _ids(chain[:, i])
               for i, name in enumerate(("grid_id", "community_id", "street_id"))},
        })  # fmt: skip


def _ids(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Unit ids, null where negative (unassigned)."""
    return pd.arrays.IntegerArray(np.maximum(values, 0), values < 0)


def prepare(batch: Batch, plan: Plan) -> Prepared:
    """Validate every row of a chunk (vectorised), convert, swap, assign, derive keys."""
    frame, n = batch.frame, len(batch)
    rej = Rejections(n)
    columns = plan.columns
    class_code = _series(_text(frame, columns["class_code"])).str.upper().to_numpy(object)
    rej.flag(class_code == "", "class_code", "missing")
    rej.flag(~_isin(class_code, plan.classes), "class_code", "unknown class", class_code)
    at, missing_time = (parse_times(frame[columns["reported_at"]], plan.timezone))
    earliest, latest = (np.datetime64(t.replace(tzinfo=None), "us")
                        for t in (EARLIEST, plan.latest))
    unparseable, out_of_range = np.isnat(at), (at < earliest) | (at > latest)
    raw_time = _text_where(frame, columns["reported_at"], unparseable | out_of_range)
    rej.flag(missing_time, "reported_at", "missing")
    rej.flag(unparseable, "reported_at", "unparseable time", raw_time)
    rej.flag(out_of_range, "reported_at", "time out of range", raw_time)
    located = locate(batch, plan)
    invalid = _apply_location_problems(located.problems, rej, plan.keep_invalid)
    source = _sources(_text(frame, columns["source"]), plan.source)
    rej.flag(~_isin(source, SOURCES), "source", "unknown source", source)
    key = _text(frame, columns["source_key"])
    rej.flag(_too_long(key, MAX_SOURCE_KEY), "source_key",
             f"longer than {MAX_SOURCE_KEY} characters")
    description = _text(frame, columns["description"])
    rej.flag(_too_long(description, MAX_DESCRIPTION), "description",
             f"longer than {MAX_DESCRIPTION} characters")
    for name, values in (("source_key", key), ("description", description)):
        rej.flag(_series(values).str.contains(NUL, regex=False).to_numpy(dtype=bool), name,
                 "contains a NUL character")
    status, chain = _assign(located, invalid, rej.rejected, plan)
    key = _keys(key, source, class_code, at, located, description, plan.dedupe, ~rej.rejected)
    return Prepared(batch, rej, source, key, class_code, description, at, located, status, chain)


def _apply_location_problems(problems: list[Problem], rej: Rejections,
                             keep_invalid: bool) -> np.ndarray:
    """Reject rows with bad coordinates, or (``keep_invalid``) mark them invalid; the CRS column
    is always a rejection, as a wrong name is a data error, not a missing location."""
    invalid = np.zeros(len(rej.rejected), dtype=bool)
    for problem in problems:
        if keep_invalid and problem.field != "crs":
            invalid |= problem.mask
        else:
            rej.flag(problem.mask, problem.field, problem.kind, problem.values)
    return invalid


def _assign(located: Located, invalid: np.ndarray, rejected: np.ndarray,
            plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Location status and (grid, community, street) ids per row, in memory."""
    n = len(invalid)
    status = np.where(invalid, "invalid", "outside").astype(object)
    chain = np.full((n, 3), -1, dtype=np.int64)
    todo = np.flatnonzero(~invalid & ~rejected)
    if len(todo):
        position = plan.index.assign(located.lon[todo], located.lat[todo])
        hit = position >= 0
        status[todo[hit]] = "assigned"
        chain[todo[hit]] = plan.chain[position[hit]]
    return status, chain


def _keys(key, source, class_code, at, located, description, dedupe, ok) -> np.ndarray:
    """Source keys, with derived content keys where missing (None without dedupe)."""
    out = np.where(key == "", None, key).astype(object)
    todo = np.flatnonzero((key == "") & ok)
    if not dedupe or not len(todo):
        return out
    parts = [np.datetime_as_string(at[todo], unit="us").astype(object),
             np.round(located.lon[todo], 7).astype(str).astype(object),
             np.round(located.lat[todo], 7).astype(str).astype(object), description[todo]]
    joined = _series(source[todo]).str.cat([_series(class_code[todo]), *map(_series, parts)],
                                           sep="|")
    out[todo] = ["sha1:" + hashlib.sha1(s.encode()).hexdigest() for s in joined.tolist()]
    return out


# -- rejects -------------------------------------------------------------------------------------
def default_rejects_path(reader: Reader) -> Path:
    """``<FILE>.rejects.csv`` next to the input, or in the current directory if not writable."""
    path = getattr(reader, "path", None)
    name = f"{Path(path).name if path else _safe_name(reader.name)}.rejects.csv"
    if path is not None and os.access(Path(path).resolve().parent, os.W_OK):
        return Path(path).with_name(name)
    return Path.cwd() / name


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "import"


class RejectSink:
    """Quarantined rows to ``incident_reject`` (COPY) and to a CSV written beside the input.

    The CSV is written to a ``.part`` file and renamed at the end, so a failed import does not
    leave a rejects file that describes nothing stored; an import that quarantines nothing
    writes no file.
    """

    HEAD = ("row_number", "field", "reason")

    def __init__(self, conn: Connection, batch_id: int, path: Path, columns: list[str],
                 geometry: bool, delimiter: str = ",") -> None:
        self.conn, self.batch_id, self.path, self.delimiter = conn, batch_id, path, delimiter
        self.columns = columns + (["geometry"] if geometry else [])
        self.part = path.with_name(path.name + ".part")
        self.handle = open(self.part, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        csv.writer(self.handle).writerow([*self.HEAD, *self.columns])
        self.count = 0

    def add(self, batch: Batch, idx: np.ndarray, fields: Sequence, reasons: Sequence) -> None:
        """Quarantine rows ``idx`` (positions in the batch) with their field and reason."""
        self.count += len(idx) + len(batch.malformed)
        if len(idx):
            original = _original(batch, idx, self.columns)
            raws = original.to_json(orient="records", lines=True, force_ascii=False,
                                    date_format="iso", double_precision=15
                                    ).rstrip("\n").split("\n")
            rows = batch.rows[idx].tolist()
            self._copy(zip(rows, fields, reasons, raws, strict=True))
            head = pd.DataFrame({"row_number": rows, "field": list(fields),
                                 "reason": list(reasons)})
            pd.concat([head, original.reset_index(drop=True)], axis=1).to_csv(
                self.handle, header=False, index=False)
        for bad in batch.malformed:
            line = bad.text.replace(NUL, "\ufffd")
            self._copy([(bad.row, None, bad.reason, json.dumps({"line": line},
                                                                 ensure_ascii=False))])
            fields_of_line = next(csv.reader([line], delimiter=self.delimiter),
                                  [])[:len(self.columns)]
            csv.writer(self.handle).writerow([bad.row, "", bad.reason, *fields_of_line])

    def _copy(self, rows: Iterable[tuple]) -> None:
        cursor = self.conn.connection.driver_connection.cursor()
        with cursor.copy("COPY incident_reject (batch_id, row_number, field, reason, raw) "
                         "FROM STDIN") as copy:
            for row_number, field_name, reason, raw in rows:
                copy.write_row((self.batch_id, row_number, field_name, reason, raw))

    def close(self, keep: bool) -> Path | None:
        self.handle.close()
        if keep and self.count:
            os.replace(self.part, self.path)
            return self.path
        self.part.unlink(missing_ok=True)
        return None


def _original(batch: Batch, idx: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The original values of rows ``idx``, with the geometry as WKT when there is one."""
    original = batch.frame.iloc[idx].reset_index(drop=True)
    if "geometry" in columns and "geometry" not in batch.frame.columns:
        geoms = batch.geoms[idx] if batch.geoms is not None else np.full(len(idx), None)
        original["geometry"] = shapely.to_wkt(geoms, rounding_precision=-1)
    original = original.astype(object)
    original = original.map(lambda v: v.replace(NUL, "\ufffd") if isinstance(v, str) else v)
    return original.where(original.notna(), None)


# -- the summary ---------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    file: str
    format: str
    encoding: str | None
    crs: str
    dry_run: bool
    batch_id: int | None = None
    rows_read: int = 0
    loaded: int = 0
    assigned: int = 0
    outside: int = 0
    invalid: int = 0
    swapped: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejects_file: str | None = None
    partitions_rebuilt: list[str] = field(default_factory=list)  # built aside, swapped in

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def add(self, prepared: Prepared, duplicate_idx: np.ndarray) -> None:
        batch = prepared.batch
        self.rows_read += len(batch) + len(batch.malformed)
        loaded = prepared.ok.copy()
        loaded[duplicate_idx] = False
        self.loaded += int(loaded.sum())
        self.duplicates += len(duplicate_idx)
        self.rejected += int(prepared.rejections.rejected.sum()) + len(batch.malformed)
        for status in ("assigned", "outside", "invalid"):
            setattr(self, status, getattr(self, status)
                    + int((loaded & (prepared.status == status)).sum()))
        self.swapped += int((loaded & prepared.located.swapped).sum())
        rej = prepared.rejections
        counts = Counter(f"{f}: {k}" for f, k in zip(rej.field[rej.rejected],
                                                     rej.kind[rej.rejected], strict=True))
        counts.update("line: malformed" for _ in batch.malformed)
        for reason, count in counts.items():
            self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + count

    def stats(self) -> dict:
        return {k: getattr(self, k) for k in ("assigned", "outside", "invalid", "swapped",
                                              "rejected_by_reason")}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["rows_per_s"] = round(self.rows_per_s)
        return out

    def to_text(self) -> str:
        lines = [
            f"{'dry run of ' if self.dry_run else ''}import of {self.file} "
            f"({self.format}{', ' + self.encoding if self.encoding else ''}, {self.crs})"
            f"{'' if self.batch_id is None else f' as batch {self.batch_id}'}",
            f"  rows read   {self.rows_read:>12,}",
            f"  loaded      {self.loaded:>12,}   assigned {self.assigned:,}, outside "
            f"{self.outside:,}, invalid {self.invalid:,}; lat/lon swapped {self.swapped:,}",
            f"  duplicates  {self.duplicates:>12,}",
            f"  rejected    {self.rejected:>12,}",
        ]
        for reason, count in sorted(self.rejected_by_reason.items(), key=lambda kv: -kv[1]):
            lines.append(f"    {count:>10,}  {reason}")
        if self.rejects_file:
            lines.append(f"  rejects file: {self.rejects_file}")
        if self.partitions_rebuilt:
            lines.append("  built aside and swapped in (were empty): "
                         + ", ".join(self.partitions_rebuilt))
        lines.append(f"  {self.seconds:.1f} s, {self.rows_per_s:,.0f} rows/s")
        if self.dry_run:
            lines.append("dry run: everything was rolled back, nothing was stored")
        return "\n".join(lines)


# -- progress ------------------------------------------------------------------------------------
class Progress:
    """A click progress bar on stderr, in rows, naming the current stage; silent if disabled."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.rows, self.stage = 0, "reading"
        self.bar = None
        if enabled and total:
            self.bar = click.progressbar(
                length=total, label="importing", file=sys.stderr,
                item_show_func=lambda _: f"{self.rows:,} rows · {self.stage}")

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def step(self, stage: str, rows: int = 0) -> None:
        self.stage, self.rows = stage, self.rows + rows
        if self.bar is not None:
            left = max(self.bar.length - self.bar.pos, 0)  # a CSV's total is an estimate
            self.bar.update(left if stage == "committing" else min(rows, left), current_item=stage)


# -- the import ----------------------------------------------------------------------------------
def import_file(engine: Engine, path: Path | str, options: ImportOptions,
                progress: bool = False) -> ImportSummary:
    """Import one file; see the module docstring. Raises ImportFileError for unreadable files."""
    return import_reader(engine, open_reader(Path(path), options), options, progress=progress)


def import_reader(engine: Engine, reader: Reader, options: ImportOptions,
                  progress: bool = False) -> ImportSummary:
    """Read, validate, assign and load everything from ``reader`` in one transaction."""
    started = time.perf_counter()
    plan = make_plan(engine, reader, options)
    summary = ImportSummary(file=reader.name, format=reader.fmt, encoding=reader.encoding,
                            crs=plan.crs, dry_run=options.dry_run)
    sink: RejectSink | None = None
    try:
        with engine.connect() as conn, conn.begin() as tx:
            _hold_generation(conn, plan.generation_id)
            summary.batch_id = _start_batch(conn, reader, options, plan)
            sink = RejectSink(conn, summary.batch_id,
                              options.rejects or default_rejects_path(reader),
                              list(reader.columns), plan.use_geometry,
                              getattr(reader, "delimiter", ","))
            load = BulkLoad(conn, summary.batch_id)
            with Progress(reader.total, progress) as bar:
                for prepared, rows in _prepared_ahead(reader.batches(options.chunk_size), plan):
                    _load_batch(load, prepared, rows, summary, sink, bar)
                bar.step("indexing")
                summary.partitions_rebuilt = load.finish().swapped
                bar.step("committing")
            summary.seconds = time.perf_counter() - started
            _finish_batch(conn, summary)
            if options.dry_run:
                tx.rollback()
                summary.batch_id = None
    except BaseException:
        if sink is not None:
            sink.close(keep=False)
        raise
    written = sink.close(keep=True)
    summary.rejects_file = str(written) if written else None
    summary.seconds = time.perf_counter() - started
    return summary


def _hold_generation(conn: Connection, generation_id: int) -> None:
    """Lock the active generation's row until commit, so an activation waits for the import
    (and then reassigns its rows) instead of slipping in between assignment and commit."""
    active = conn.execute(text("SELECT id FROM generation WHERE active FOR SHARE")
                          ).scalar_one_or_none()
    if active != generation_id:
        raise ImportSetupError(f"the active generation changed (now {active}) while the "
                               "import was being prepared; run it again")


def _prepared_ahead(batches: Iterable[Batch],
                    plan: Plan) -> Iterator[tuple[Prepared, pd.DataFrame]]:
    """Each chunk validated and converted (``prepare`` and ``bulk_rows``) in a worker thread
    while the database stores the one before it: numpy, pandas and Arrow release the GIL, and so
    does psycopg while it waits for the server."""
    def work(batch: Batch) -> tuple[Prepared, pd.DataFrame]:
        prepared = prepare(batch, plan)
        return prepared, prepared.bulk_rows(plan.generation_id)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridgov-prepare") as pool:
        pending: Future | None = None
        try:
            for batch in batches:
                ahead = pool.submit(work, batch)
                if pending is not None:
                    yield pending.result()
                pending = ahead
            if pending is not None:
                yield pending.result()
        finally:
            if pending is not None:
                pending.cancel()


def _load_batch(load: BulkLoad, prepared: Prepared, rows: pd.DataFrame, summary: ImportSummary,
                sink: RejectSink, bar: Progress) -> None:
    batch = prepared.batch
    bar.step("loading")
    result = load.write(rows)
    duplicate_idx = np.searchsorted(batch.rows, [row for row, _ in result.duplicates])
    rej = prepared.rejections
    rejected_idx = np.flatnonzero(rej.rejected)
    idx = np.concatenate([rejected_idx, duplicate_idx]).astype(np.int64)
    fields = [*rej.field[rejected_idx], *(["source_key"] * len(duplicate_idx))]
    reasons = [*rej.reason[rejected_idx],
               *(f"duplicate of incident {incident}" for _, incident in result.duplicates)]
    order = np.argsort(idx, kind="stable")
    sink.add(batch, idx[order], [fields[i] for i in order], [reasons[i] for i in order])
    summary.add(prepared, duplicate_idx)
    bar.step("read", len(batch) + len(batch.malformed))


def _start_batch(conn: Connection, reader: Reader, options: ImportOptions, plan: Plan) -> int:
    details = {**options.to_json(), "format": reader.fmt, "encoding": reader.encoding,
               "crs_used": plan.crs, "columns": plan.columns,
               "coordinates": "geometry" if plan.use_geometry else "columns",
               "generation_id": plan.generation_id}
    return conn.execute(
        text("INSERT INTO import_batch (source_file, checksum, options) "
             "VALUES (:file, :checksum, CAST(:options AS jsonb)) RETURNING id"),
        {"file": str(Path(reader.name).resolve()) if getattr(reader, "path", None)
         else reader.name, "checksum": reader.checksum,
         "options": json.dumps(details, ensure_ascii=False)},
    ).scalar_one()


def _finish_batch(conn: Connection, summary: ImportSummary) -> None:
    conn.execute(
        text("UPDATE import_batch SET rows_read = :read, loaded = :loaded, "
             "duplicates = :duplicates, rejected = :rejected, finished_at = now(), "
             "options = options || jsonb_build_object('stats', CAST(:stats AS jsonb), "
             "'seconds', CAST(:seconds AS float8)) WHERE id = :id"),
        {"read": summary.rows_read, "loaded": summary.loaded, "duplicates": summary.duplicates,
         "rejected": summary.rejected, "stats": json.dumps(summary.stats(), ensure_ascii=False),
         "seconds": round(summary.seconds, 3), "id": summary.batch_id},
    )


def summary_json(summary: ImportSummary) -> str:
    return json.dumps(summary.to_dict(), ensure_ascii=False, indent=2)
