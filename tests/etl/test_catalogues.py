"""The demo-catalogue generator (etl.catalogues), `gridgov catalogues load` and `gridgov powers`."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from etl import catalogues as gen
from etl.cli import main
from gis.database import get_engine
from gis.deadlines import read_rule_rows, read_rules
from gis.organisation import CATALOGUE_DIR, read_staff, read_staff_grids
from gis.powers import read_class_routes, read_power_items

FILES = ("departments.csv", "power_items.csv", "class_routes.csv", "class_powers.csv",
         "staff.csv", "staff_grids.csv", "grid_area_classes.csv")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("catalogues")
    counts = gen.generate(out)
    return out, counts


# -- the generator -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
def test_regenerating_gives_the_shipped_bytes(regenerated, name):
    out, _ = regenerated
    assert (out / name).read_bytes() == (CATALOGUE_DIR / name).read_bytes()


def test_generated_counts(regenerated):
    _, counts = regenerated
    assert counts == {"departments.csv": 60, "power_items.csv": 1920, "class_routes.csv": 101,
                      "class_powers.csv": 57, "staff.csv": 9944, "staff_grids.csv": 9301,
                      "grid_area_classes.csv": 2400}


def test_another_seed_changes_names_not_counts(tmp_path, regenerated):
    out, _ = regenerated
    gen.main(["--seed", "7", "--out", str(tmp_path)])
    assert (tmp_path / "departments.csv").read_bytes() == (out / "departments.csv").read_bytes()
    ours, theirs = read_staff(out / "staff.csv"), read_staff(tmp_path / "staff.csv")
    assert Counter(s.post for s in ours) == Counter(s.post for s in theirs)
    assert [s.name for s in ours] != [s.name for s in theirs]


def test_power_items_follow_the_transfers(regenerated):
    out, _ = regenerated
    items = read_power_items(out / "power_items.csv")
    current = Counter((i.original_department, i.executing_department, i.kind)
                      for i in items if i.valid_to is None)
    assert current == {(t.original, t.executing, t.kind): t.count for t in gen.TRANSFERS}
    assert all(i.valid_to.year < 2019 for i in items if i.valid_to is not None)
    assert len({i.name for i in items}) == len(items) and all(i.demo for i in items)
    prefix = {"penalty": "CF", "coercive_measure": "QZ"}
    assert all(re.fullmatch(rf"LX-{prefix[i.kind]}-\d{{6}}", i.code) for i in items)
    assert all(re.fullmatch(r"《[^》]+》第\d+条", i.legal_basis) for i in items)


def test_class_routes_one_responsible_each(regenerated):
    out, _ = regenerated
    routes = read_class_routes(out / "class_routes.csv")
    responsible = Counter(r.class_code for r in routes if r.role == "responsible")
    assert len(responsible) == 82 and set(responsible.values()) == {1}


def test_staff_phones_are_fake_and_unique(regenerated):
    out, _ = regenerated
    phones = [s.phone for s in read_staff(out / "staff.csv")]
    assert all(re.fullmatch(r"100-\d{4}-\d{4}", p) for p in phones)
    assert len(set(phones)) == len(phones)


def test_leader_groups_are_consecutive_grids(regenerated):
    out, _ = regenerated
    grids: dict[str, list[str]] = {}
    for link in read_staff_grids(out / "staff_grids.csv"):
        if link.role == "leader":
            grids.setdefault(link.staff_code, []).append(link.grid_code)
    for codes in grids.values():
        numbers = sorted(int(c) for c in codes)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


@pytest.mark.parametrize(("density", "expected"), [(5.9, "A"), (4.0, "A"), (3.99, "B"),
                                                   (1.1, "B"), (1.09, "C"), (1.0, "C")])
def test_area_class_thresholds(density, expected):
    assert gen.area_class(density) == expected


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture
def gridgov(fresh_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_catalogues_load_loads_everything_in_order_and_is_idempotent(gridgov):
    first = gridgov("catalogues", "load").output
    assert first.splitlines() == [
        "82 incident classes loaded", f"{len(read_rules())} deadline rules loaded",
        "60 departments loaded", "1,920 power items loaded", "101 class routes loaded",
        "57 class powers loaded", "9,944 staff loaded", "9,301 grid staff attachments loaded",
        "2,400 grid area classes loaded"]
    assert gridgov("catalogues", "load").output == first


def test_catalogues_load_reports_a_bad_file(gridgov, tmp_path):
    bad = tmp_path / "classes.csv"
    bad.write_text("code,kind,major_name,minor_name,line\nC0101,event,a,b,c\n",
                   encoding="utf-8")
    result = gridgov("catalogues", "load", "--path", bad, ok=False)
    assert result.exit_code == 1 and "line 2: kind" in result.output


CATALOGUE_TABLES = ("incident_class", "deadline_rule", "department", "power_item",
                    "class_route", "class_power", "staff", "staff_grid", "grid_area_class")


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row of every catalogue table."""
    with get_engine(url).connect() as conn:
        return {table: tuple(conn.execute(text(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {table} t")).one()) for table in CATALOGUE_TABLES}


def catalogue_copy(tmp_path) -> Path:
    """A copy of the data/catalogues files, to spoil."""
    folder = tmp_path / "catalogues"
    shutil.copytree(CATALOGUE_DIR, folder, ignore=shutil.ignore_patterns("supervision"))
    return folder


def edit_row(path: Path, line: int, **cells: str) -> Path:
    """Change ``cells`` of the row on ``line`` (1 = the header) of a catalogue CSV."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[line - 2].update(cells)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_bad_later_file_loads_nothing_into_an_empty_database(gridgov, fresh_url, tmp_path):
    before = snapshot(fresh_url)
    assert {count for count, _ in before.values()} == {0}
    folder = catalogue_copy(tmp_path)
    path = edit_row(folder / "grid_area_classes.csv", 9, area_class="Z")
    result = gridgov("catalogues", "load", "--dir", folder, ok=False)
    assert result.exit_code == 1
    assert f"{path} line 9: area_class: 'Z' is not one of A, B, C" in result.output
    assert result.output.endswith("; nothing was loaded\n") and " classes loaded" not in \
        result.output
    assert snapshot(fresh_url) == before


def test_a_bad_reference_in_a_later_file_leaves_the_database_unchanged(gridgov, fresh_url,
                                                                         tmp_path):
    gridgov("catalogues", "load")
    before = snapshot(fresh_url)
    # earlier files change (a class, a department), then staff.csv names an unknown
    # department: found only while writing, after the earlier files were written
    folder = catalogue_copy(tmp_path)
    edit_row(folder / "classes.csv", 2, minor_name="改名的井盖")
    edit_row(folder / "departments.csv", 2, name="改名的指挥中心")
    path = edit_row(folder / "staff.csv", 30, department="nobody")
    result = gridgov("catalogues", "load", "--dir", folder, ok=False)
    assert result.exit_code == 1
    assert (f"{path} line 30: department: unknown department 'nobody' (load departments first)"
            in result.output)
    assert snapshot(fresh_url) == before
    # the same folder without the bad row loads, and then the earlier changes are there
    edit_row(path, 30, department=read_staff()[28].department)
    gridgov("catalogues", "load", "--dir", folder)
    after = snapshot(fresh_url)
    assert after["staff"] == before["staff"] and after["department"] != before["department"]
    assert after["incident_class"] != before["incident_class"]


def test_a_deadline_for_an_unknown_class_loads_nothing(gridgov, fresh_url, tmp_path):
    folder = catalogue_copy(tmp_path)
    path = edit_row(folder / "deadlines.csv", 3, class_code="E0999")
    result = gridgov("catalogues", "load", "--dir", folder, ok=False)
    assert f"{path} line 3: class_code: unknown class 'E0999'" in result.output
    assert {count for count, _ in snapshot(fresh_url).values()} == {0}


@pytest.mark.parametrize(("cells", "field", "reason"), [
    ({"amount": "soon"}, "amount", "'soon' is not a number"),
    ({"amount": "-1"}, "amount", "'-1' is not a positive number"),
    ({"stage": "lunch"}, "stage", "'lunch' is not one of"),
    ({"area_class": "D"}, "area_class", "'D' is not one of"),
    ({"class_code": "X1"}, "class_code", "'X1' is neither a class code nor *"),
    ({"unit": "weeks"}, "unit", "'weeks' is not one of"),
    ({"stage": "accept"}, "stage", "*/*/accept already has a rule (line 2)"),
])
def test_deadline_rows_are_checked_field_by_field(tmp_path, cells, field, reason):
    path = edit_row(catalogue_copy(tmp_path) / "deadlines.csv", 3, **cells)
    with pytest.raises(ValueError) as caught:
        read_rule_rows(path)
    assert f"{path} line 3: {field}: {reason}" in str(caught.value)


def test_powers_summary_text_json_and_date(gridgov):
    gridgov("catalogues", "load")
    out = gridgov("powers", "summary").output
    assert out.splitlines()[-1].endswith("处罚 penalty 1,846, 强制 coercive measure 67; "
                                         "total 1,913")
    rows = json.loads(gridgov("powers", "summary", "--json").output)
    assert {(r["original_code"], r["kind"]): r["count"] for r in rows}[("hcb", "penalty")] == 436
    earlier = json.loads(gridgov("powers", "summary", "--on", "2018-11-15", "--json").output)
    assert {(r["original_code"], r["kind"]): r["count"] for r in earlier}[
        ("hcb", "penalty")] == 440
    assert "in force on 2019-06-01" in gridgov("powers", "summary", "--on", "2019-06-01").output
