"""Simulated cases: legal paths, working-time durations, and rows identical to the workflow's.

One small district database (the shipped Liangxi generation, every catalogue, a few hundred
simulated incidents at the end of 2019) is cloned before any case is written: the simulator
bulk-writes into one copy, the real :class:`gis.workflow.Workflow` replays the same steps into
the other, and the rows are compared column by column.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from etl.cli import main
from etl.simulate_cases import (
    CASE_COLUMNS,
    Branches,
    SimCase,
    SimulationConfig,
    YearKnobs,
    community_performance,
    load_cases,
    load_incidents,
    prepare_district,
    simulate_cases,
    solve,
    write_cases,
)
from gis.database import get_engine
from gis.workflow import OPEN_STATES, TRANSITIONS, Workflow, check_transition
from gis.worktime import SHANGHAI, WorkCalendar

SEED = 77
START, END = date(2019, 11, 1), date(2019, 12, 31)
HORIZON = datetime(2020, 1, 1, tzinfo=SHANGHAI)
#: Side paths made common, so that a few hundred cases take every branch.
BUSY = SimulationConfig(
    {2019: YearKnobs(performance_mean=0.5, performance_spread=4.0, late_closure=0.4)},
    Branches(not_accepted=0.05, duplicate=0.15, void=0.03, not_filed=0.04, returned=0.9,
             rework=0.9, extension=0.25, extension_refused=0.4, suspended=0.08,
             overdue_supervised=0.6))


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an import writes its rejects file to the current directory


@pytest.fixture(scope="module")
def district(database_factory, template_name) -> str:
    """Liangxi, the catalogues and 700 simulated incidents; no case yet (clone it to write)."""
    url = database_factory.create("simcases", template=template_name)
    engine = get_engine(url)
    prepare_district(engine)
    load_incidents(engine, seed=SEED, start=START, end=END, count=700, config=BUSY)
    engine.dispose()
    return make_url(url).database


@pytest.fixture
def clone(database_factory, district):
    """A writable copy of the district database."""
    urls = []

    def make(suffix: str):
        urls.append(database_factory.create(f"{suffix}{len(urls)}", template=district))
        return get_engine(urls[-1])

    yield make
    for url in urls:
        database_factory.drop(url)


@pytest.fixture(scope="module")
def paths(database_factory, district) -> list[SimCase]:
    """The paths, in memory (read from a throwaway copy: nothing is written)."""
    url = database_factory.create("paths", template=district)
    with get_engine(url).connect() as conn:
        cases = simulate_cases(conn, seed=SEED, start=START, end=END, config=BUSY,
                               horizon=HORIZON)
    database_factory.drop(url)
    return cases


# -- the paths -----------------------------------------------------------------------------------
def test_every_step_is_legal_and_later_than_the_one_before(paths):
    assert len(paths) == 700
    for case in paths:
        events = case.events
        assert [e[1] for e in events] == list(range(1, len(events) + 1))
        assert events[0][2] == "report" and events[0][4] == "reported"
        for before, after, step in zip(events[:-1], events[1:], case.steps[1:], strict=True):
            assert after[8] > before[8]
            assert after[3] == before[4]  # from_state is the state the case was in
            check_transition(after[3], after[2], after[7], note=after[10])
            assert step.action == after[2]
        assert events[-1][4] == case.row["state"]


def test_paths_take_every_branch(paths):
    actions = {e[2] for case in paths for e in case.events}
    assert actions == {"report", *TRANSITIONS} - {"copy_to"}
    states = {case.row["state"] for case in paths}
    assert {"evaluated", "closed", "not_accepted", "duplicate", "void", "not_filed"} <= states
    assert states & OPEN_STATES, "cases reported at the very end are still open"
    assert any(case.copies for case in paths)


def test_open_cases_are_the_recent_ones(paths):
    open_cases = [c for c in paths if c.row["state"] in OPEN_STATES]
    recent = [c for c in open_cases if c.row["reported_at"] > HORIZON - timedelta(days=10)]
    assert len(recent) > 0.6 * len(open_cases)
    assert all(c.last_at < HORIZON for c in paths)


def test_handlers_work_in_working_time(paths):
    """Signing and feedback fall in working periods, nights and weekends aside (work-hour
    classes; the clock keeps running only for classes with clock-hour deadlines)."""
    calendar = WorkCalendar.from_csv()
    schedule = calendar.schedule.periods
    inside = total = 0
    for case in paths:
        if case.row["class_code"] in ("E0501", "E0503", "E0506"):
            continue
        for event in case.events:
            if event[2] in ("sign", "feedback"):
                local = event[8].astimezone(SHANGHAI)
                offset = local - local.replace(hour=0, minute=0, second=0)
                total += 1
                inside += calendar.is_workday(local.date()) and any(
                    begin <= offset <= end for begin, end in schedule)
    assert total > 500 and inside / total > 0.97


def test_deadlines_come_from_the_deadline_book(paths):
    calendar = WorkCalendar.from_csv()
    e0102 = [c.row for c in paths if c.row["class_code"] == "E0102" and c.row["filed_at"]
             and c.row["extension_count"] == 0 and not any(e[2] == "resume" for e in c.events)]
    assert e0102
    for row in e0102:
        assert row["due_at"] == calendar.add(row["filed_at"], 1, "work_days")


# -- the rows: bulk COPY = the real workflow ---------------------------------------------------
def _rows(engine, sql: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql)).mappings()]


def _replay(engine, cases: list[SimCase]) -> None:
    """Every step through Workflow.open_case / act, each case under the id the simulator used."""
    with engine.begin() as conn:
        workflow = Workflow.load(conn)
        for case in cases:
            conn.execute(text("SELECT setval('case_file_id_seq', :id, false)"),
                         {"id": case.row["id"]})
            opening = case.steps[0]
            view = workflow.open_case(conn, case.row["incident_id"],
                                      case.row["incident_reported_at"], opening.actor,
                                      location=opening.location)
            assert view.id == case.row["id"]
            for step in case.steps[1:]:
                workflow.act(conn, view.id, step.action, step.actor, at=step.at,
                             note=step.note, location=step.location, **step.details)


def test_bulk_rows_equal_the_workflow_replay(clone):
    bulk, replayed = clone("bulk"), clone("replay")
    with bulk.begin() as conn:
        cases = simulate_cases(conn, seed=SEED, start=START, end=END, config=BUSY,
                               horizon=HORIZON)
        write_cases(conn, cases)
    sample = _sample(cases)
    _replay(replayed, sample)
    ids = ", ".join(str(c.row["id"]) for c in sample)
    columns = ", ".join(c for c in CASE_COLUMNS if c != "updated_at")
    case_sql = (f"SELECT {columns}, CASE WHEN version > 1 THEN updated_at END AS u "
                f"FROM case_file WHERE id IN ({ids}) ORDER BY id")
    assert _rows(bulk, case_sql) == _rows(replayed, case_sql)
    event_sql = ("SELECT case_id, seq, action, from_state, to_state, actor_staff_id, actor_name, "
                 "actor_role, at, ST_AsEWKT(geom) AS geom, note, photos, details, node_due_at, "
                 f"overdue FROM case_event WHERE case_id IN ({ids}) ORDER BY case_id, seq")
    bulk_events, replayed_events = _rows(bulk, event_sql), _rows(replayed, event_sql)
    assert len(bulk_events) == sum(len(c.events) for c in sample)
    assert bulk_events == replayed_events
    assert {e["action"] for e in bulk_events} == {"report", *TRANSITIONS} - {"copy_to"}
    copy_sql = ("SELECT case_id, department_id, at, reason FROM case_copy "
                f"WHERE case_id IN ({ids}) ORDER BY 1, 2")
    assert _rows(bulk, copy_sql) == _rows(replayed, copy_sql)


def _sample(cases: list[SimCase]) -> list[SimCase]:
    """Every third case, every case with a rare step, and the originals of duplicates."""
    rare = {"mark_duplicate", "void", "decline_filing", "refuse_extension", "suspend"}
    chosen = {c.row["id"] for i, c in enumerate(cases)
              if i % 3 == 0 or rare & {e[2] for e in c.events}}
    chosen |= {c.row["duplicate_of_id"] for c in cases if c.row["id"] in chosen} - {None}
    return [c for c in cases if c.row["id"] in chosen]


# -- loading -------------------------------------------------------------------------------------
def test_load_cases_is_idempotent(clone):
    engine = clone("load")
    first = load_cases(engine, seed=SEED, start=START, end=END, config=BUSY, horizon=HORIZON)
    again = load_cases(engine, seed=SEED, start=START, end=END, config=BUSY, horizon=HORIZON)
    assert (first.cases, again.cases) == (700, 0)
    assert first.events > 5 * first.cases and sum(first.states.values()) == 700
    numbers = _rows(engine, "SELECT number, reported_at FROM case_file")
    assert all(r["number"][:8] == f"{r['reported_at'].astimezone(SHANGHAI):%Y%m%d}"
               for r in numbers)


def test_cli_loads_incidents_and_cases_once(clone, monkeypatch):
    engine = clone("cli")
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    args = ["simulate", "--seed", "5", "--count", "300", "--start", "2019-12-01", "--end",
            "2019-12-31", "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "cases: 300 simulated through the workflow" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "cases: 0 simulated" in again.output
    counts = _rows(engine, "SELECT count(*) AS n FROM case_file f JOIN incident i "
                           "ON i.id = f.incident_id WHERE i.source_key LIKE 'SIM5-%'")
    assert counts[0]["n"] == 300
    skipped = CliRunner().invoke(main, [*args[:-1], "--seed", "6", "--no-cases", "--quiet"])
    assert skipped.exit_code == 0 and "cases:" not in skipped.output


def test_without_catalogues_cases_are_skipped_with_a_reason(fresh_engine):
    summary = load_cases(fresh_engine, seed=1, start=START, end=END)
    assert summary.cases == 0 and "gridgov catalogues load" in summary.skipped


# -- knobs ---------------------------------------------------------------------------------------
def test_performance_follows_the_knobs():
    codes = [f"320213025{n:03d}" for n in range(1, 41)]
    low = community_performance(codes, [2019], BUSY, seed=3)
    high = community_performance(codes, [2019], BUSY.with_year(2019, performance_mean=0.8),
                                 seed=3)
    assert all(high[key] > low[key] for key in low)
    mean = sum(high.values()) / len(high)
    assert 0.7 < mean < 0.9
    assert community_performance(codes, [2019], BUSY, seed=3) == low


def test_knobs_round_trip(tmp_path):
    config = replace(BUSY.with_year(2018, occurrence=1.2),
                     calibration={"seed": 2018, "start": date(2018, 1, 1), "count": 40_000})
    path = config.dump(tmp_path / "simulation.toml")
    assert SimulationConfig.load(path) == config
    assert config.year(2030) == config.year(2019) and config.year(2000) == config.year(2018)


def test_shipped_knobs_load():
    config = SimulationConfig.load()
    assert {2018, 2019} <= set(config.years)
    assert config.year(2019).occurrence < config.year(2018).occurrence


@pytest.mark.parametrize("increasing", [True, False])
def test_solve_finds_the_knob_of_a_monotone_measure(increasing):
    calls = []

    def measure(x: float) -> float:
        calls.append(x)
        value = 1 / (1 + math.exp(-8 * (x - 0.3)))
        return value if increasing else 1 - value

    target = 0.7 if increasing else 0.3
    knob, value = solve(measure, target, 0.0, 1.0, tolerance=0.001, increasing=increasing,
                        start=0.5)
    assert abs(value - target) <= 0.001 and len(calls) <= 10
    knob, value = solve(measure, 2.0, 0.0, 1.0, tolerance=0.001, increasing=increasing)
    assert knob == (1.0 if increasing else 0.0)  # out of reach: the nearest end
