"""Small, exact boundary hierarchies for tests: a 2×2 km district near Wuxi, cut into
2 streets × 2 communities × 4 grids along one shared lattice, so neighbours share vertices."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import MultiPolygon, box

LON0, LAT0, STEP = 120.30, 31.56, 0.005  # lattice of 4 × 4 cells of 0.005°


def lattice(i: int, j: int) -> tuple[float, float]:
    return float(np.float64(LON0) + i * STEP), float(np.float64(LAT0) + j * STEP)


def cells(i0: int, j0: int, i1: int, j1: int) -> MultiPolygon:
    (x0, y0), (x1, y1) = lattice(i0, j0), lattice(i1, j1)
    return MultiPolygon([box(x0, y0, x1, y1)])


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def small_hierarchy() -> dict[str, gpd.GeoDataFrame]:
    """district 320213; streets 320213001 (west) / 320213002 (east); each with a north and a
    south community; each community 2 × 2 grids, numbered west→east, north→south."""
    district = _frame([{"code": "320213", "name": "测试区", "parent_code": None,
                        "geometry": cells(0, 0, 4, 4)}])
    streets, communities, grids = [], [], []
    for s, i0 in enumerate((0, 2), start=1):
        street = f"320213{s:03d}"
        streets.append({"code": street, "name": f"街道{s}", "parent_code": "320213",
                        "geometry": cells(i0, 0, i0 + 2, 4)})
        for c, j0 in enumerate((2, 0), start=1):  # north first
            community = f"{street}{c:03d}"
            communities.append({"code": community, "name": f"社区{s}{c}",
                                "parent_code": street, "geometry": cells(i0, j0, i0 + 2, j0 + 2)})
            seq = 0
            for j in (j0 + 1, j0):
                for i in (i0, i0 + 1):
                    seq += 1
                    grids.append({"code": f"{community}{seq:03d}", "name": f"网格{seq}",
                                  "parent_code": community, "grid_type": "comprehensive",
                                  "dedicated_kind": None, "geometry": cells(i, j, i + 1, j + 1)})
    return {"district": district, "street": _frame(streets),
            "community": _frame(communities), "grid": _frame(grids)}


def small_organisation(conn) -> dict[str, int]:
    """Departments and routes for workflow tests on :func:`small_hierarchy`: E0102 goes to the
    enforcement bureau (so to the squadron of the case's street) with the market bureau copied
    in; E0708 goes to the market bureau; E0603 has no route (the command centre's queue)."""
    from sqlalchemy import text

    def department(code, name, kind, parent=None, street=None):
        return conn.execute(text(
            """INSERT INTO department (code, name, kind, parent_id, street_code)
               VALUES (:c, :n, :k, :p, :s) RETURNING id"""),
            {"c": code, "n": name, "k": kind, "p": parent, "s": street}).scalar_one()

    ids = {"command_centre": department("command_centre", "指挥中心", "command_centre")}
    ids["caeb"] = department("caeb", "综合行政执法局", "bureau")
    ids["caeb_team"] = department("caeb_team", "综合行政执法大队", "enforcement_team",
                                  ids["caeb"])
    for street in ("320213001", "320213002"):
        ids[f"squadron_{street}"] = department(f"squadron_{street}", f"{street}中队",
                                               "squadron", ids["caeb_team"], street)
    ids["msb"] = department("msb", "市场监督管理局", "bureau")
    routes = [("E0102", ids["caeb"], "responsible"), ("E0102", ids["msb"], "copy"),
              ("E0708", ids["msb"], "responsible")]
    conn.execute(text("INSERT INTO class_route VALUES (:c, :d, :r)"),
                 [{"c": c, "d": d, "r": r} for c, d, r in routes])
    return ids
