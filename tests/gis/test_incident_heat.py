"""Incident density for heat maps: assigned incidents per ~10 m cell, by period, class, source."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gis.incident_heat import HEAT_DECIMALS, heat_points
from gis.incidents import report_incident
from gis.periods import parse_period
from tests.factories import lattice

CST = ZoneInfo("Asia/Shanghai")
MAY = datetime(2019, 5, 6, 9, tzinfo=CST)


def _report(engine, cell, offset, *, at=MAY, source="hotline", class_code="E0102"):
    x, y = lattice(*cell)
    return report_incident(engine, source=source, class_code=class_code, reported_at=at,
                           x=x + offset[0], y=y + offset[1], crs="cgcs2000")


def test_heat_points_bin_count_and_filter(world):
    engine = world[0]
    _report(engine, (0, 3), (0.00101, 0.00101))
    _report(engine, (0, 3), (0.00102, 0.00102))  # the same ~10 m cell as the first
    _report(engine, (0, 3), (0.00301, 0.00301), source="grid_worker")
    _report(engine, (2, 1), (0.002, 0.002), class_code="E0708")
    _report(engine, (0, 3), (0.001, 0.001), at=MAY - timedelta(days=30))  # April
    outside = report_incident(engine, source="hotline", class_code="E0102", reported_at=MAY,
                              x=121.5, y=31.2, crs="cgcs2000")
    assert outside.location_status != "assigned"
    may = parse_period("2019-05")
    with engine.connect() as conn:
        points = heat_points(conn, may)
        by = {name: heat_points(conn, may, **kwargs) for name, kwargs in {
            "hotline": {"source": "hotline"}, "E07": {"class_code": "E07"},
            "E0102 field": {"class_code": "E0102", "source": "grid_worker"},
            "E": {"class_code": "E"}}.items()}
        april = heat_points(conn, parse_period("2019-04"))
        empty = heat_points(conn, parse_period("2018"))
    assert points.shape == (3, 3)
    assert points[:, :2].tolist() == sorted(points[:, :2].tolist())  # by lat, then lon
    assert sorted(points[:, 2].tolist()) == [1, 1, 2]  # two reports share a cell; outside: none
    assert np.array_equal(points[:, :2], np.round(points[:, :2], HEAT_DECIMALS))
    lat, lon = points[points[:, 2] == 2][0, :2]
    x, y = lattice(0, 3)
    assert abs(lon - (x + 0.001)) < 1e-9 and abs(lat - (y + 0.001)) < 1e-9  # [lat, lon, n]
    assert by["hotline"][:, 2].sum() == 3 and by["E07"][:, 2].sum() == 1
    assert by["E0102 field"][:, 2].sum() == 1 and by["E"][:, 2].sum() == 4
    assert april[:, 2].sum() == 1 and empty.shape == (0, 3)
