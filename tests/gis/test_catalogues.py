"""Loading every catalogue at once (gis.catalogues.load_catalogues): all or nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from gis.catalogues import (
    CLASSES_CSV,
    Catalogue,
    catalogue_files,
    load_catalogues,
    read_classes,
    write_classes,
)

COUNTS = """SELECT (SELECT count(*) FROM incident_class), (SELECT count(*) FROM deadline_rule),
                   (SELECT count(*) FROM department)"""


def counts(engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(COUNTS)).one())


def test_every_catalogue_in_dependency_order():
    names = [c.path.name for c in catalogue_files()]
    assert names == ["classes.csv", "deadlines.csv", "departments.csv", "power_items.csv",
                     "class_routes.csv", "class_powers.csv", "staff.csv", "staff_grids.csv",
                     "grid_area_classes.csv"]
    assert all(c.path.exists() for c in catalogue_files())


def test_a_row_the_database_rejects_rolls_back_the_earlier_files(fresh_engine):
    # a writer handed a row no reader would pass: the CHECK on the class code refuses it
    first, deadlines = catalogue_files()[:2]
    spoilt = Catalogue("spoilt classes", CLASSES_CSV, lambda path: [
        {"code": "X0101", "kind": "event", "major_name": "a", "minor_name": "b",
         "line": "water"}], write_classes)
    with pytest.raises(ValueError, match=rf"^{CLASSES_CSV}: rejected by the database: "):
        load_catalogues(fresh_engine, [first, deadlines, spoilt])
    assert counts(fresh_engine) == (0, 0, 0)


def test_a_bad_file_is_found_before_anything_is_written(fresh_engine, tmp_path):
    bad = tmp_path / "grid_area_classes.csv"
    bad.write_text("grid_code,area_class\n320213,A\n", encoding="utf-8")
    *earlier, last = catalogue_files()
    files = [*earlier, replace(last, path=bad)]
    with pytest.raises(ValueError, match="line 2: grid_code: '320213' is not a 15-digit"):
        load_catalogues(fresh_engine, files)
    assert counts(fresh_engine) == (0, 0, 0)


def test_the_classes_are_checked_like_the_other_files(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("code,kind,major_name,minor_name,line\n"
                    "E0101,event,市容环境,私搭乱建,urban_management\n"
                    "E0101,event,市容环境,私搭乱建,urban_management\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path} line 3: code: 'E0101' is repeated \(line 2\)"):
        read_classes(path)
    path.write_text("code,kind,major_name,minor_name,line\nE0101,event,a,b,roads\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path} line 2: line: 'roads' is not one of"):
        read_classes(path)
