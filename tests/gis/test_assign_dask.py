"""The Dask engine gives exactly GridIndex's answers, on a local cluster, over many partitions.

Points are the adversarial families of ``test_assign`` (edges, 3-way vertices, ulp-nudged hairs,
outside, NaN/±inf, huge values), shuffled so every partition gets some of each.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.assign import GridIndex
from gis.assign_dask import DaskGridIndex, assign_dask, assign_file, connect, grid_index
from tests.gis.synthetic_grids import synthetic_partition
from tests.gis.test_assign import adversarial_points


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return synthetic_partition()


@pytest.fixture(scope="module")
def index(grids) -> GridIndex:
    return GridIndex.from_geodataframe(grids)


@pytest.fixture(scope="module")
def small_grids() -> gpd.GeoDataFrame:
    return synthetic_partition(n=60, seed=3)


@pytest.fixture(scope="module")
def points(grids) -> pd.DataFrame:
    x, y = adversarial_points(grids)
    order = np.random.default_rng(11).permutation(len(x))
    return pd.DataFrame({"x": x[order], "y": y[order]})


@pytest.fixture(scope="module")
def client():
    with connect(n_workers=2, processes=False) as client:
        yield client


def expected(index: GridIndex, frame: pd.DataFrame) -> np.ndarray:
    return index.assign_codes(frame["x"].to_numpy(), frame["y"].to_numpy())


def test_dataframe_partitions_give_the_in_memory_answers(client, index, points):
    ddf = dd.from_pandas(points, npartitions=7)
    got = assign_dask(ddf, index, client).compute()
    assert got.index.equals(points.index)
    assert list(got.to_numpy(dtype=object)) == list(expected(index, points))


def test_grids_frame_and_no_client(small_grids):
    """Given the grids (not an index) and no client: the index travels as one delayed value."""
    x, y = adversarial_points(small_grids)
    points = pd.DataFrame({"x": x, "y": y})
    with dask.config.set(scheduler="threads"):  # not the module's distributed client
        got = assign_dask(dd.from_pandas(points, npartitions=3), small_grids).compute()
    want = GridIndex.from_geodataframe(small_grids).assign_codes(x, y)
    assert list(got.to_numpy(dtype=object)) == list(want)


def test_geodataframe_points(client, index, points):
    finite = points[np.isfinite(points["x"]) & np.isfinite(points["y"])]
    geoms = shapely.points(finite["x"], finite["y"]).astype(object)
    geoms[:3] = [None, shapely.Point(), shapely.box(0, 0, 1, 1)]  # missing, empty, not a point
    gdf = gpd.GeoDataFrame(geometry=geoms, crs=index.crs, index=finite.index)
    got = assign_dask(dask_geopandas.from_geopandas(gdf, npartitions=5), index, client).compute()
    want = expected(index, finite)
    want[:3] = None
    assert list(got.to_numpy(dtype=object)) == list(want)


def test_csv_and_parquet_files(client, index, points, tmp_path):
    """Several files, small blocks (several partitions each); bad text values are unassigned."""
    frame = points.astype(object)
    frame.iloc[5] = ["abc", "31.5"]
    frame.iloc[6] = ["", ""]
    half = len(frame) // 2
    csvs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    frame.iloc[:half].to_csv(csvs[0], index=False)
    frame.iloc[half:].to_csv(csvs[1], index=False)
    want = expected(index, points)
    want[[5, 6]] = None
    got = assign_file(csvs, index, client, blocksize=200_000).compute()
    assert list(got.to_numpy(dtype=object)) == list(want)
    parquet = tmp_path / "points.parquet"
    points.to_parquet(parquet, row_group_size=10_000)
    got = assign_file(parquet, index, client, split_row_groups=True).compute()
    assert list(got.to_numpy(dtype=object)) == list(expected(index, points))


def test_dask_grid_index_has_the_importers_shape(client, index, points):
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    with DaskGridIndex(index, client) as engine:
        assert list(engine.codes) == list(index.codes)
        assert np.array_equal(engine.assign(x, y), index.assign(x, y))
        shaped = (x[:600].reshape(20, 30), y[:600].reshape(20, 30))
        assert np.array_equal(engine.assign(*shaped), index.assign(*shaped))
        assert list(engine.assign_codes(x, y)) == list(index.assign_codes(x, y))
        assert engine.assign([], []).shape == (0,)
        with pytest.raises(ValueError, match="shapes differ"):
            engine.assign(x[:3], y[:2])


def test_default_local_cluster_of_worker_processes(grids, index, points):
    """``--engine dask`` without a scheduler: two worker processes get the pickled index."""
    engine = grid_index(grids, "dask")
    try:
        assert len(engine.client.scheduler_info()["workers"]) == 2
        x, y = points["x"].to_numpy(), points["y"].to_numpy()
        assert np.array_equal(engine.assign(x, y), index.assign(x, y))
    finally:
        engine.close()


def test_engine_choice(small_grids):
    assert isinstance(grid_index(small_grids, "memory"), GridIndex)
    assert isinstance(grid_index(small_grids, "dask", "tcp://nowhere:8786"), DaskGridIndex)
    with pytest.raises(ValueError, match="engine must be one of"):
        grid_index(small_grids, "spark")
