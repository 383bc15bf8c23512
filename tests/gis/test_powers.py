"""The demo power list, class routes and class powers: loading, checking, summary and routing."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gis.catalogues import load_classes, read_classes
from gis.database import get_engine
from gis.organisation import load_departments
from gis.partition import STREETS
from gis.powers import (
    CLASS_POWERS_CSV,
    CLASS_ROUTES_CSV,
    POWER_ITEMS_CSV,
    load_class_powers,
    load_class_routes,
    load_power_items,
    power_summary,
    read_class_powers,
    read_class_routes,
    read_power_items,
    summary_text,
)
from gis.routing import route_case

#: DOMAIN §6: items in force after the 2018-11-01 transfer.
SEED_COUNTS = {
    ("hcb", "caeb", "penalty"): 436,
    ("csb", "caeb", "penalty"): 10,
    ("caeb", "caeb", "penalty"): 256,
    ("caeb", "caeb", "coercive_measure"): 10,
    ("drb", "msb", "penalty"): 11,
    ("drb", "msb", "coercive_measure"): 2,
    ("msb", "msb", "penalty"): 1133,
    ("msb", "msb", "coercive_measure"): 55,
}
LINE_HANDLER = {
    "public_security": "psb",
    "environment": "eeb",
    "water": "wrb",
    "production_safety": "emb",
    "food_drug": "msb",
    "market_regulation": "msb",
}
STREET = STREETS[7].full_code  # 崇安寺


def load_powers(engine: Engine) -> None:
    for load in (load_classes, load_departments, load_power_items, load_class_routes,
                 load_class_powers):
        load(engine)


@pytest.fixture(scope="module")
def powers_engine(database_factory, template_name) -> Iterator[Engine]:
    """A database with classes, departments and the power list (read-only tests)."""
    url = database_factory.create("powers", template=template_name)
    engine = get_engine(url)
    load_powers(engine)
    yield engine
    database_factory.drop(url)


def counts(engine: Engine, on: date) -> dict[tuple[str, str, str], int]:
    with engine.connect() as conn:
        return {(r.original_code, r.executing_code, r.kind): r.count
                for r in power_summary(conn, on)}


def code_of(engine: Engine, department_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT code FROM department WHERE id = :i"),
                            {"i": department_id}).scalar_one()


# -- the summary ----------------------------------------------------------------------------------
@pytest.mark.parametrize("on", [date.today(), date(2019, 6, 1), date(2019, 1, 1)])
def test_items_in_force_match_the_seed_counts(powers_engine, on):
    assert counts(powers_engine, on) == SEED_COUNTS


def test_withdrawn_items_count_only_while_they_were_in_force(powers_engine):
    before_year_end = counts(powers_engine, date(2018, 11, 15))
    assert before_year_end[("hcb", "caeb", "penalty")] == 436 + 4
    assert before_year_end[("msb", "msb", "penalty")] == 1133 + 3
    assert counts(powers_engine, date(2018, 12, 15))[("msb", "msb", "penalty")] == 1133


def test_before_the_transfer_only_centralised_items_are_in_force(powers_engine):
    assert counts(powers_engine, date(2018, 6, 1)) == {
        ("caeb", "caeb", "penalty"): 256, ("caeb", "caeb", "coercive_measure"): 10,
        ("msb", "msb", "penalty"): 1133 + 3, ("msb", "msb", "coercive_measure"): 55}


def test_summary_text_has_rows_and_totals(powers_engine):
    with powers_engine.connect() as conn:
        out = summary_text(power_summary(conn, date(2019, 6, 1)), date(2019, 6, 1))
    assert "梁溪区住房和城乡建设局 (hcb) → 梁溪区综合行政执法局 (caeb)" in out
    assert out.splitlines()[-1] == ("in force on 2019-06-01: 处罚 penalty 1,846, "
                                    "强制 coercive measure 67; total 1,913")


# -- routing --------------------------------------------------------------------------------------
def expected_handler(cls: dict[str, str], street: str | None) -> str:
    line = cls["line"]
    if line == "urban_management":
        if cls["code"].startswith("C"):
            return "cmb"
        return f"squadron_{street}" if street else "caeb"
    if line == "comprehensive_governance":
        return f"street_office_{street}" if street else "governance_centre"
    return LINE_HANDLER[line]


def test_every_class_has_exactly_one_responsible_department(powers_engine):
    with powers_engine.connect() as conn:
        rows = dict(conn.execute(text(
            """SELECT c.code, count(r.department_id) FROM incident_class c
               LEFT JOIN class_route r ON r.class_code = c.code AND r.role = 'responsible'
               GROUP BY c.code""")).all())
    assert len(rows) == len(read_classes()) and set(rows.values()) == {1}


@pytest.mark.parametrize("street", [STREET, STREETS[3].full_code, None])
def test_every_class_lands_where_its_line_says(powers_engine, street):
    with powers_engine.connect() as conn:
        for cls in read_classes():
            route = route_case(conn, cls["code"], street)
            assert not route.fallback
            assert code_of(powers_engine, route.handler_id) == expected_handler(cls, street), cls


def test_urban_management_event_goes_to_the_street_squadron(powers_engine):
    with powers_engine.connect() as conn:
        route = route_case(conn, "E0404", STREET)
    assert route.handler_name == "梁溪区综合行政执法大队崇安寺街道中队"
    assert route.department_name == "梁溪区综合行政执法局"


def test_comprehensive_governance_goes_to_the_street_office(powers_engine):
    with powers_engine.connect() as conn:
        route = route_case(conn, "E0603", STREET)
    assert route.handler_name == "崇安寺街道办事处"


@pytest.mark.parametrize(("class_code", "copied"), [
    ("E0408", {"caeb"}), ("E0109", {"caeb"}), ("E0405", {"caeb"}),
    ("E0702", {"health_supervision_team"}), ("E0101", set()),
])
def test_copies(powers_engine, class_code, copied):
    with powers_engine.connect() as conn:
        route = route_case(conn, class_code, STREET)
    assert {code_of(powers_engine, d) for d in route.copy_department_ids} == copied


@pytest.mark.parametrize(("class_code", "origin"), [("E0101", "hcb"), ("E0404", "caeb"),
                                                   ("E0708", "msb")])
def test_classes_call_on_power_items_of_the_right_department(powers_engine, class_code, origin):
    with powers_engine.connect() as conn:
        route = route_case(conn, class_code, STREET, on=date(2019, 6, 1))
        origins = set(conn.execute(text(
            """SELECT d.code FROM power_item p JOIN department d
               ON d.id = p.original_department_id WHERE p.code = ANY(:c)"""),
            {"c": route.power_item_codes}).scalars())
    assert route.power_item_codes and origins == {origin}


def test_class_without_route_falls_back_to_the_command_centre(powers_engine):
    with powers_engine.connect() as conn:
        conn.execute(text("DELETE FROM class_route WHERE class_code = 'E0404'"))
        route = route_case(conn, "E0404", STREET)
        conn.rollback()
    assert route.fallback and code_of(powers_engine, route.handler_id) == "command_centre"


# -- loading --------------------------------------------------------------------------------------
def test_loading_twice_changes_nothing(fresh_engine):
    load_powers(fresh_engine)
    query = text("SELECT (SELECT count(*) FROM power_item), (SELECT count(*) FROM class_route), "
                 "(SELECT count(*) FROM class_power), (SELECT max(id) FROM power_item)")
    with fresh_engine.connect() as conn:
        first = conn.execute(query).one()
    load_powers(fresh_engine)
    with fresh_engine.connect() as conn:
        assert conn.execute(query).one() == first == (1920, 101, 57, first[3])


def edited(tmp_path: Path, source: Path, edit: Callable[[list[list[str]]], None]) -> Path:
    """A copy of a shipped CSV with ``edit`` applied to its rows (header is row 0)."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    edit(rows)
    path = tmp_path / source.name
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def set_cell(line: int, column: str, value: str, **more: str) -> Callable[[list[list[str]]],
                                                                          None]:
    def edit(rows: list[list[str]]) -> None:
        for name, new in {column: value, **more}.items():
            rows[line - 1][rows[0].index(name)] = new
    return edit


def copy_line(src: int, line: int) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        rows[line - 1] = list(rows[src - 1])
    return edit


@pytest.mark.parametrize(("reader", "source", "edit", "line", "field"), [
    (read_power_items, POWER_ITEMS_CSV, set_cell(5, "kind", "fine"), 5, "kind"),
    (read_power_items, POWER_ITEMS_CSV, set_cell(6, "valid_from", "2018-13-01"), 6,
     "valid_from"),
    (read_power_items, POWER_ITEMS_CSV, set_cell(7, "valid_to", "2018-01-01"), 7, "valid_to"),
    (read_power_items, POWER_ITEMS_CSV, set_cell(8, "name", ""), 8, "name"),
    (read_power_items, POWER_ITEMS_CSV, set_cell(9, "demo", "maybe"), 9, "demo"),
    (read_power_items, POWER_ITEMS_CSV, copy_line(2, 40), 40, "code"),
    (read_class_routes, CLASS_ROUTES_CSV, set_cell(3, "role", "owner"), 3, "role"),
    (read_class_routes, CLASS_ROUTES_CSV, set_cell(3, "class_code", "X0101"), 3, "class_code"),
    (read_class_routes, CLASS_ROUTES_CSV, set_cell(3, "class_code", "C0101", department="psb"),
     3, "class_code"),
    (read_class_routes, CLASS_ROUTES_CSV, copy_line(4, 5), 5, "department"),
    (read_class_powers, CLASS_POWERS_CSV, copy_line(2, 3), 3, "power_code"),
])
def test_readers_reject_bad_rows_naming_file_line_and_field(tmp_path, reader, source, edit,
                                                            line, field):
    path = edited(tmp_path, source, edit)
    with pytest.raises(ValueError) as caught:
        reader(path)
    assert f"{path} line {line}: {field}:" in str(caught.value)


def test_missing_column_is_reported(tmp_path):
    path = tmp_path / "power_items.csv"
    path.write_text("code,name\nLX-CF-1,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="legal_basis"):
        read_power_items(path)


@pytest.mark.parametrize(("loader", "source", "edit", "line", "field"), [
    (load_power_items, POWER_ITEMS_CSV, set_cell(12, "executing_department", "nobody"), 12,
     "executing_department"),
    (load_class_routes, CLASS_ROUTES_CSV, set_cell(20, "class_code", "E0999"), 20,
     "class_code"),
    (load_class_routes, CLASS_ROUTES_CSV, set_cell(21, "department", "nobody"), 21,
     "department"),
    (load_class_powers, CLASS_POWERS_CSV, set_cell(4, "power_code", "LX-CF-999999"), 4,
     "power_code"),
])
def test_loaders_reject_bad_references_and_keep_what_was_there(fresh_engine, tmp_path, loader,
                                                               source, edit, line, field):
    load_powers(fresh_engine)
    query = text("SELECT (SELECT count(*) FROM power_item), (SELECT count(*) FROM class_route),"
                 " (SELECT count(*) FROM class_power)")
    with fresh_engine.connect() as conn:
        before = conn.execute(query).one()
    path = edited(tmp_path, source, edit)
    with pytest.raises(ValueError) as caught:
        loader(fresh_engine, path)
    assert f"{path} line {line}: {field}:" in str(caught.value)
    with fresh_engine.connect() as conn:
        assert conn.execute(query).one() == before


def test_items_dropped_from_the_list_are_removed(fresh_engine, tmp_path):
    load_powers(fresh_engine)
    shorter = edited(tmp_path, POWER_ITEMS_CSV, lambda rows: rows.pop())
    assert load_power_items(fresh_engine, shorter) == 1919
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM power_item")).scalar_one() == 1919
