"""Bulk point → grid assignment on Dask, answer for answer the in-memory :class:`GridIndex`.

For point files bigger than one machine: the :class:`~gis.assign.GridIndex` is built once and
broadcast to every worker (``client.scatter(index, broadcast=True)``; about 30 MB pickled for
Liangxi's 2,400 grids, unpickled once per worker), the points stay partitioned where they are
read, and each partition runs the very same ``GridIndex.assign``, so the codes are identical to
the in-memory engine's. Without a client the index travels as one ``dask.delayed`` value
instead (the graph carries it once).

- :func:`assign_dask`: a dask DataFrame with x/y columns, a dask-geopandas GeoDataFrame, or file
  paths → a dask Series of grid codes (``None`` where no grid covers the point).
- :func:`read_points` / :func:`assign_file`: CSV or Parquet, local or any fsspec URL
  (``s3://…``, ``gs://…``, ``https://…``), read lazily in blocks.
- :class:`DaskGridIndex`: the importer's shape (``codes``, ``assign``, ``assign_codes`` on numpy
  arrays) running on a cluster; :func:`grid_index` picks it or GridIndex by ``--engine``.
- :func:`connect`: a client of a scheduler address, or of a local cluster of two workers.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from gis.assign import GridIndex

if TYPE_CHECKING:  # dask is imported when first used: importing this module stays cheap
    import dask.dataframe as dd
    from distributed import Client, Future

__all__ = [
    "DaskGridIndex",
    "assign_dask",
    "assign_file",
    "connect",
    "grid_index",
    "read_points",
]

ENGINES = ("memory", "dask")
LOCAL_WORKERS = 2  # the default local cluster: two single-threaded worker processes
MIN_CHUNK = 50_000  # DaskGridIndex.assign: points per task at least (below, overhead dominates)
MAX_CHUNK = 1_000_000  # … and at most (bounds a task's memory)
PARQUET = (".parquet", ".pq", ".geoparquet")
Paths = str | Path | Sequence[str | Path]


def connect(
    scheduler: str | None = None, *, n_workers: int = LOCAL_WORKERS, processes: bool = True
) -> Client:
    """A client of the scheduler at ``scheduler`` (``tcp://host:8786``), or else of a new local
    cluster of ``n_workers`` one-thread workers that closes with the client."""
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    return Client(
        n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=":0"
    )


def broadcast(index: GridIndex, client: Client | None) -> Future | Any:
    """``index`` as a task argument: scattered to every worker, or one delayed value."""
    import dask

    if client is None:
        return dask.delayed(index, name=f"gridindex-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(index, broadcast=True, hash=False)


# -- dataframes ----------------------------------------------------------------------------------
_META = pd.Series([], dtype=object, name="grid_code")


def _numbers(values: pd.Series) -> np.ndarray:
    """A column as float64; anything that is not a number becomes NaN (→ unassigned)."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _partition_xy(part: pd.DataFrame, x: str | None, y: str | None) -> tuple[np.ndarray, ...]:
    """Coordinates of a partition: from ``x``/``y`` columns, else from its point geometries
    (NaN, so unassigned, for missing, empty and non-point geometries)."""
    if x is not None and y is not None:
        return _numbers(part[x]), _numbers(part[y])
    geoms = np.asarray(part.geometry.array, dtype=object)
    point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    xs, ys = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    xs[point], ys[point] = shapely.get_x(geoms[point]), shapely.get_y(geoms[point])
    return xs, ys


def _partition_codes(
    part: pd.DataFrame, index: GridIndex, x: str | None, y: str | None, threads: int
) -> pd.Series:
    """Grid codes of one partition's points, on its own index (so rows line up)."""
    codes = index.assign_codes(*_partition_xy(part, x, y), threads=threads)
    return pd.Series(codes, index=part.index, name="grid_code", dtype=object)


def _as_frame(
    points: Any, index: GridIndex, x: str, y: str
) -> tuple[dd.DataFrame, str | None, str | None]:
    """Points as a dask frame and the coordinate columns to use (None: the geometry)."""
    import dask.dataframe as dd

    if isinstance(points, str | Path) or _is_path_list(points):
        return read_points(points, x, y), x, y
    if hasattr(points, "geometry") and hasattr(points, "crs"):  # a dask-geopandas frame
        if points.crs is not None and index.crs is not None and points.crs != index.crs:
            points = points.to_crs(index.crs)
        return points, None, None
    if isinstance(points, dd.DataFrame):
        missing = [c for c in (x, y) if c not in points.columns]
        if missing:
            raise ValueError(f"no column {missing[0]!r}; columns are {list(points.columns)}")
        return points, x, y
    raise TypeError(f"expected a dask (geo)dataframe or file paths, got {type(points).__name__}")


def _is_path_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str | Path) for v in value)


def assign_dask(
    points: Any,
    grids: Any,
    client: Client | None = None,
    *,
    x: str = "x",
    y: str = "y",
    threads: int = 1,
) -> dd.Series:
    """Lazy grid code per point, identical to ``GridIndex.assign_codes``.

    ``points``: a dask DataFrame with ``x``/``y`` columns (in the grids' CRS), a dask-geopandas
    GeoDataFrame (reprojected to the grids' CRS if it declares another) or CSV/Parquet paths.
    ``grids``: a GeoDataFrame (``code``, ``geometry``) or a built GridIndex. With ``client`` the
    index is scattered to every worker first; ``threads`` is per task (workers run tasks in
    parallel already). The Series keeps the points' partitions and index.
    """
    index = grids if isinstance(grids, GridIndex) else GridIndex.from_geodataframe(grids)
    frame, xcol, ycol = _as_frame(points, index, x, y)
    shared = broadcast(index, client)
    return frame.map_partitions(_partition_codes, shared, xcol, ycol, threads, meta=_META)


def read_points(
    paths: Paths,
    x: str = "x",
    y: str = "y",
    *,
    blocksize: str | int = "64MB",
    storage_options: dict | None = None,
    **read_kw: Any,
) -> dd.DataFrame:
    """The ``x``/``y`` columns of CSV or Parquet files, lazily (any fsspec URL works).

    CSV values are read as text and turned into numbers per partition, so a malformed value
    makes that row unassigned instead of failing the job. Extra keywords go to
    ``dd.read_csv`` / ``dd.read_parquet``.
    """
    import dask.dataframe as dd

    names = [str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    if all(n.rstrip("/").lower().endswith(PARQUET) or "." not in Path(n).name for n in names):
        return dd.read_parquet(names, columns=[x, y], storage_options=storage_options, **read_kw)
    return dd.read_csv(
        names,
        usecols=[x, y],
        dtype=str,
        blocksize=blocksize,
        storage_options=storage_options,
        keep_default_na=False,
        **read_kw,
    )


def assign_file(
    paths: Paths,
    grids: Any,
    client: Client | None = None,
    *,
    x: str = "x",
    y: str = "y",
    **read_kw: Any,
) -> dd.Series:
    """Lazy grid code per row of CSV/Parquet files (see :func:`read_points`)."""
    return assign_dask(read_points(paths, x, y, **read_kw), grids, client, x=x, y=y)


# -- the importer's shape --------------------------------------------------------------------------
def _assign_xy(xy: np.ndarray, index: GridIndex, threads: int) -> np.ndarray:
    """Grid positions of a (2, n) block of coordinates (runs on a worker)."""
    return index.assign(xy[0], xy[1], threads=threads)


def _shut_down(state: dict[str, Any], owned: bool) -> None:
    """Release the scattered index (so no worker leaves holding it), then close an owned client."""
    shared, client = state["shared"], state["client"]
    if shared is not None:
        shared.release()
    if owned and client is not None:
        client.close()
    state["shared"] = state["client"] = None


class DaskGridIndex:
    """A :class:`GridIndex` whose ``assign`` runs on a Dask cluster, same inputs and answers.

    A drop-in for the importer's in-memory step: ``codes``, ``crs``, ``assign`` (grid positions)
    and ``assign_codes``. The index is scattered to every worker once, on first use; each call
    splits the points into blocks of ``MIN_CHUNK``–``MAX_CHUNK`` and gathers the positions back
    in order. Without a ``client``, one is made from ``scheduler`` (or a local cluster) and
    closed with :meth:`close`, on ``with`` exit, or when this object is collected.
    """

    def __init__(
        self,
        index: GridIndex,
        client: Client | None = None,
        *,
        scheduler: str | None = None,
        threads: int = 1,
    ) -> None:
        self.index, self.codes, self.crs = index, index.codes, index.crs
        self.threads, self._scheduler = threads, scheduler
        self._codes_or_none = np.append(index.codes, None)
        self._state: dict[str, Any] = {"client": client, "shared": None}
        self._finalizer = weakref.finalize(self, _shut_down, self._state, client is None)

    @classmethod
    def from_geodataframe(
        cls, gdf: Any, client: Client | None = None, *, scheduler: str | None = None
    ) -> DaskGridIndex:
        return cls(GridIndex.from_geodataframe(gdf), client, scheduler=scheduler)

    @property
    def client(self) -> Client:
        """The client in use, connected on first need."""
        if not self._finalizer.alive:
            raise RuntimeError("this DaskGridIndex is closed")
        if self._state["client"] is None:
            self._state["client"] = connect(self._scheduler)
        return self._state["client"]

    def _index_future(self) -> Future:
        if self._state["shared"] is None:
            self._state["shared"] = self.client.scatter(self.index, broadcast=True, hash=False)
        return self._state["shared"]

    def assign(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, *, threads: int | None = None
    ) -> np.ndarray:
        """Position in ``codes`` per point, or -1: as ``GridIndex.assign``, on the cluster."""
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lon and lat shapes differ: {x.shape} vs {y.shape}")
        if x.size == 0:
            return np.empty(x.shape, dtype=np.int64)
        blocks = np.array_split(np.stack([x.ravel(), y.ravel()]), self._blocks(x.size), axis=1)
        client = self.client
        futures = client.map(
            _assign_xy,
            client.scatter(blocks),
            index=self._index_future(),
            threads=threads or self.threads,
            pure=False,
        )
        return np.concatenate(client.gather(futures)).reshape(x.shape)

    def assign_codes(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, *, threads: int | None = None
    ) -> np.ndarray:
        """Grid code per point (object array), ``None`` where unassigned."""
        return self._codes_or_none[self.assign(lon, lat, threads=threads)]

    def _blocks(self, n: int) -> int:
        """How many blocks: one per worker thread, within the block size bounds."""
        workers = max(1, sum(self.client.nthreads().values()))
        return int(np.clip(workers, -(-n // MAX_CHUNK), max(1, n // MIN_CHUNK)))

    def close(self) -> None:
        """Release the scattered index, and close the client if this object made it."""
        self._finalizer()

    def __enter__(self) -> DaskGridIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def grid_index(
    grids: Any, engine: str = "memory", scheduler: str | None = None
) -> GridIndex | DaskGridIndex:
    """The importer's assignment engine for ``--engine``: in memory, or on Dask (``scheduler``
    address, default a local cluster of two workers)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    index = GridIndex.from_geodataframe(grids)
    return index if engine == "memory" else DaskGridIndex(index, scheduler=scheduler)
