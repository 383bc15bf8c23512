"""Departments, staff, grid staff and grid area classes: the shipped demo data, its loading and
the checks on untrusted files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gis.boundaries import load_shipped
from gis.catalogues import load_classes
from gis.database import get_engine
from gis.organisation import (
    AREA_CLASSES_CSV,
    DEPARTMENTS_CSV,
    STAFF_CSV,
    STAFF_GRIDS_CSV,
    grid_code_problem,
    load_area_classes,
    load_departments,
    load_staff,
    load_staff_grids,
    read_area_classes,
    read_departments,
    read_staff,
    read_staff_grids,
)
from gis.partition import STREETS

LOADERS = (load_classes, load_departments, load_staff, load_staff_grids, load_area_classes)
ACTIVE_GRIDS = """SELECT u.code FROM unit u JOIN generation g ON g.id = u.generation_id
                  WHERE g.active AND u.level = 'grid'"""


@pytest.fixture(scope="module")
def org_engine(database_factory, template_name) -> Iterator[Engine]:
    """The shipped Liangxi generation with the whole organisation loaded (read-only tests)."""
    url = database_factory.create("organisation", template=template_name)
    engine = get_engine(url)
    load_shipped(engine)
    for load in LOADERS:
        load(engine)
    yield engine
    database_factory.drop(url)


def scalar(engine: Engine, sql: str, **params) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def rows(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


# -- departments ---------------------------------------------------------------------------------
def test_squadrons_one_per_street_plus_specialised(org_engine):
    squadrons = rows(org_engine, """
        SELECT d.code, d.name, d.street_code FROM department d
        JOIN department p ON p.id = d.parent_id
        WHERE d.kind = 'squadron' AND p.code = 'caeb_team'""")
    assert len(squadrons) == 25
    stationed = {s.street_code: s for s in squadrons if s.street_code}
    assert set(stationed) == {s.full_code for s in STREETS}
    for street in STREETS:
        squadron = stationed[street.full_code]
        assert squadron.code == f"squadron_{street.full_code}"
        assert squadron.name == f"梁溪区综合行政执法大队{street.name}中队"


def test_street_offices_under_the_governance_centre(org_engine):
    offices = rows(org_engine, """
        SELECT d.name, d.street_code FROM department d JOIN department p ON p.id = d.parent_id
        WHERE d.kind = 'street_office' AND p.code = 'governance_centre'""")
    assert sorted(offices) == sorted((f"{s.name}办事处", s.full_code) for s in STREETS)


@pytest.mark.parametrize(("code", "kind", "parent"), [
    ("command_centre", "command_centre", None), ("caeb", "bureau", None),
    ("caeb_team", "enforcement_team", "caeb"), ("market_enforcement_team", "professional_team",
                                                 "msb"),
    ("safety_enforcement_team", "professional_team", "emb"),
    ("labour_inspection_team", "professional_team", "hrssb"),
    ("health_supervision_team", "professional_team", "hhc"), ("cmb", "bureau", None),
])
def test_department_tree(org_engine, code, kind, parent):
    row = rows(org_engine, """SELECT d.kind, p.code FROM department d
                              LEFT JOIN department p ON p.id = d.parent_id
                              WHERE d.code = :c""", c=code)
    assert [tuple(r) for r in row] == [(kind, parent)]


def test_only_invented_departments_are_demo(org_engine):
    demo = {r[0] for r in rows(org_engine, "SELECT code FROM department WHERE demo")}
    assert len(demo) == 9 and all(code.startswith("squadron_") for code in demo)


# -- staff ---------------------------------------------------------------------------------------
def test_staff_counts_per_post(org_engine):
    posts = dict(rows(org_engine, "SELECT post, count(*) FROM staff GROUP BY post"))
    assert posts["management_member"] == 712
    assert posts["enforcement_member"] == 187
    assert posts["grid_leader"] == 2104
    assert posts["grid_worker"] == 6901
    for post in ("call_taker", "acceptor", "shift_leader", "dispatcher", "supervisor"):
        assert posts[post] > 0
    assert scalar(org_engine, "SELECT bool_and(demo AND active) FROM staff")


def test_enforcement_members_spread_over_all_squadrons(org_engine):
    spread = rows(org_engine, """
        SELECT d.code, count(s.id) FROM department d
        LEFT JOIN staff s ON s.department_id = d.id AND s.post = 'enforcement_member'
        WHERE d.kind = 'squadron' GROUP BY d.code""")
    assert len(spread) == 25 and min(n for _, n in spread) >= 4


def test_grid_staff_belong_to_their_street_office(org_engine):
    assert scalar(org_engine, """
        SELECT count(*) FROM staff_grid g JOIN staff s ON s.id = g.staff_id
        JOIN department d ON d.id = s.department_id
        WHERE d.kind <> 'street_office' OR d.street_code <> left(g.grid_code, 9)""") == 0


def test_every_grid_has_exactly_one_leader(org_engine):
    leaders = dict(rows(org_engine, f"""
        SELECT a.code, count(g.staff_id) FROM ({ACTIVE_GRIDS}) a
        LEFT JOIN staff_grid g ON g.grid_code = a.code AND g.role = 'leader'
        GROUP BY a.code"""))
    assert len(leaders) == 2400 and set(leaders.values()) == {1}


def test_leaders_lead_one_to_three_grids_of_one_community(org_engine):
    led = rows(org_engine, """
        SELECT staff_id, count(*) AS grids, count(DISTINCT left(grid_code, 12)) AS communities
        FROM staff_grid WHERE role = 'leader' GROUP BY staff_id""")
    assert len(led) == 2104
    assert {r.communities for r in led} == {1}
    assert {r.grids for r in led} <= {1, 2, 3}
    assert sum(r.grids - 1 for r in led) == 2400 - 2104


def test_every_grid_has_workers_and_each_worker_one_grid(org_engine):
    workers = dict(rows(org_engine, f"""
        SELECT a.code, count(g.staff_id) FROM ({ACTIVE_GRIDS}) a
        LEFT JOIN staff_grid g ON g.grid_code = a.code AND g.role = 'worker'
        GROUP BY a.code"""))
    assert min(workers.values()) >= 1 and sum(workers.values()) == 6901
    assert scalar(org_engine, """SELECT count(DISTINCT staff_id) FROM staff_grid
                                 WHERE role = 'worker'""") == 6901


def test_denser_grids_have_more_workers(org_engine):
    mean = dict(rows(org_engine, """
        SELECT a.area_class, avg(w.n) FROM grid_area_class a
        JOIN (SELECT grid_code, count(*) AS n FROM staff_grid WHERE role = 'worker'
              GROUP BY grid_code) w ON w.grid_code = a.grid_code
        GROUP BY a.area_class"""))
    assert mean["A"] > mean["B"] > mean["C"]


# -- area classes --------------------------------------------------------------------------------
def test_every_grid_has_an_area_class_in_roughly_quarter_half_quarter(org_engine):
    shares = dict(rows(org_engine, f"""
        SELECT c.area_class, count(*) FROM ({ACTIVE_GRIDS}) a
        JOIN grid_area_class c ON c.grid_code = a.code GROUP BY c.area_class"""))
    assert sum(shares.values()) == 2400
    assert 0.2 < shares["A"] / 2400 < 0.3 and 0.2 < shares["C"] / 2400 < 0.3


def test_old_town_grids_are_class_a(org_engine):
    # 崇安寺 holds the old-town centre; 惠山 is at the western outskirts.
    by_street = dict(rows(org_engine, """
        SELECT left(grid_code, 9), avg((area_class = 'A')::int) FROM grid_area_class
        GROUP BY 1"""))
    assert by_street["320213007"] > 0.9 and by_street["320213005"] < 0.1


# -- loading -------------------------------------------------------------------------------------
def test_loading_twice_gives_the_same_rows(org_engine):
    query = """SELECT (SELECT count(*) FROM department), (SELECT count(*) FROM staff),
                      (SELECT count(*) FROM staff_grid), (SELECT count(*) FROM grid_area_class),
                      (SELECT max(id) FROM staff), (SELECT max(id) FROM department)"""
    before = rows(org_engine, query)
    for load in LOADERS:
        load(org_engine)
    assert rows(org_engine, query) == before
    assert tuple(before[0])[:4] == (60, 9944, 9301, 2400)


def test_staff_missing_from_the_file_become_inactive(fresh_engine, tmp_path):
    load_departments(fresh_engine)
    load_staff(fresh_engine)
    shorter = edited(tmp_path, STAFF_CSV, lambda table: table.pop())
    assert load_staff(fresh_engine, shorter) == 9943
    assert scalar(fresh_engine, "SELECT count(*) FROM staff WHERE NOT active") == 1


def test_without_a_generation_grid_codes_are_checked_by_form(fresh_engine):
    load_departments(fresh_engine)
    load_staff(fresh_engine)
    assert load_staff_grids(fresh_engine) == 9301
    assert load_area_classes(fresh_engine) == 2400


def test_grid_code_problem():
    assert grid_code_problem("320213007001001") is None
    assert "15-digit" in grid_code_problem("32021300700101")
    assert "district" in grid_code_problem("320214007001001")
    assert "no known street" in grid_code_problem("320213099001001")


# -- bad rows ------------------------------------------------------------------------------------
def edited(tmp_path: Path, source: Path, edit: Callable[[list[list[str]]], None]) -> Path:
    """A copy of a shipped CSV with ``edit`` applied to its rows (header is row 0)."""
    with open(source, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    edit(table)
    path = tmp_path / source.name
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    return path


def line_of(source: Path, column: str, value: str) -> int:
    with open(source, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row[column] == value:
                return number
    raise LookupError(value)


def set_cells(at: int, /, **values: str) -> Callable[[list[list[str]]], None]:
    """Set columns of the row on line ``at``."""
    def edit(table: list[list[str]]) -> None:
        for column, value in values.items():
            table[at - 1][table[0].index(column)] = value
    return edit


def copy_line(src: int, at: int, /, **values: str) -> Callable[[list[list[str]]], None]:
    """Overwrite line ``at`` with line ``src``, then set columns."""
    def edit(table: list[list[str]]) -> None:
        table[at - 1] = list(table[src - 1])
        set_cells(at, **values)(table)
    return edit


CAEB = line_of(DEPARTMENTS_CSV, "code", "caeb")
TEAM = line_of(DEPARTMENTS_CSV, "code", "caeb_team")
#: The first worker of grid 320213001001002 (its leader comes just before).
SECOND_GRID_WORKER = line_of(STAFF_GRIDS_CSV, "grid_code", "320213001001002") + 1


@pytest.mark.parametrize(("reader", "source", "edit", "line", "field"), [
    (read_departments, DEPARTMENTS_CSV, set_cells(5, kind="office"), 5, "kind"),
    (read_departments, DEPARTMENTS_CSV, set_cells(5, parent="nobody"), 5, "parent"),
    (read_departments, DEPARTMENTS_CSV, set_cells(5, street_code="320213099"), 5,
     "street_code"),
    (read_departments, DEPARTMENTS_CSV, set_cells(CAEB, street_code="320213001"), CAEB,
     "street_code"),
    (read_departments, DEPARTMENTS_CSV, set_cells(6, street_code="320213001"), 6,
     "street_code"),
    (read_departments, DEPARTMENTS_CSV, set_cells(5, code="Squadron 1"), 5, "code"),
    (read_departments, DEPARTMENTS_CSV, set_cells(CAEB, parent="caeb_team"), CAEB, "parent"),
    (read_departments, DEPARTMENTS_CSV, set_cells(7, line="roads"), 7, "line"),
    (read_departments, DEPARTMENTS_CSV, copy_line(2, 9), 9, "code"),
    (read_staff, STAFF_CSV, set_cells(10, post="boss"), 10, "post"),
    (read_staff, STAFF_CSV, set_cells(11, active="sometimes"), 11, "active"),
    (read_staff, STAFF_CSV, set_cells(12, phone="call me"), 12, "phone"),
    (read_staff, STAFF_CSV, set_cells(13, name=""), 13, "name"),
    (read_staff, STAFF_CSV, copy_line(2, 50), 50, "code"),
    (read_staff_grids, STAFF_GRIDS_CSV, set_cells(4, grid_code="32021300100100"), 4,
     "grid_code"),
    (read_staff_grids, STAFF_GRIDS_CSV, set_cells(4, grid_code="320213099001001"), 4,
     "grid_code"),
    (read_staff_grids, STAFF_GRIDS_CSV, set_cells(4, role="deputy"), 4, "role"),
    (read_staff_grids, STAFF_GRIDS_CSV,
     copy_line(2, SECOND_GRID_WORKER, grid_code="320213001001002", staff_code="LX-GL-99999"),
     SECOND_GRID_WORKER, "grid_code"),
    (read_staff_grids, STAFF_GRIDS_CSV, copy_line(2, 40, grid_code="320213003001001"), 40,
     "grid_code"),
    (read_staff_grids, STAFF_GRIDS_CSV, copy_line(3, 40, grid_code="320213001001009"), 40,
     "grid_code"),
    (read_staff_grids, STAFF_GRIDS_CSV, copy_line(2, 40, role="worker",
                                                  grid_code="320213001001009"), 40, "role"),
    (read_area_classes, AREA_CLASSES_CSV, set_cells(8, area_class="D"), 8, "area_class"),
    (read_area_classes, AREA_CLASSES_CSV, copy_line(2, 8), 8, "grid_code"),
])
def test_readers_reject_bad_rows_naming_file_line_and_field(tmp_path, reader, source, edit,
                                                            line, field):
    path = edited(tmp_path, source, edit)
    with pytest.raises(ValueError) as caught:
        reader(path)
    assert f"{path} line {line}: {field}:" in str(caught.value)


def test_non_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "departments.csv"
    path.write_bytes(DEPARTMENTS_CSV.read_bytes().decode("utf-8").encode("gb18030"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_departments(path)


@pytest.mark.parametrize(("loader", "source", "edit", "line", "field"), [
    (load_staff, STAFF_CSV, set_cells(30, department="nobody"), 30, "department"),
    (load_staff_grids, STAFF_GRIDS_CSV, set_cells(6, staff_code="LX-XX-00001"), 6,
     "staff_code"),
    (load_staff_grids, STAFF_GRIDS_CSV, set_cells(2, staff_code="LX-MM-00001"), 2, "role"),
    (load_staff_grids, STAFF_GRIDS_CSV, set_cells(9302, grid_code="320213015001999"), 9302,
     "grid_code"),
    (load_area_classes, AREA_CLASSES_CSV, set_cells(2401, grid_code="320213015001999"), 2401,
     "grid_code"),
])
def test_loaders_reject_bad_references_and_write_nothing(org_engine, tmp_path, loader, source,
                                                         edit, line, field):
    query = """SELECT (SELECT count(*) FROM staff), (SELECT count(*) FROM staff_grid),
                      (SELECT count(*) FROM grid_area_class)"""
    before = rows(org_engine, query)
    path = edited(tmp_path, source, edit)
    with pytest.raises(ValueError) as caught:
        loader(org_engine, path)
    assert f"{path} line {line}: {field}:" in str(caught.value)
    assert rows(org_engine, query) == before


def test_department_order_puts_parents_first():
    seen: set[str] = set()
    for entry in read_departments():
        assert entry.parent is None or entry.parent in seen
        seen.add(entry.code)
