"""The command-centre dashboard's service calls, old and new side by side, on the demo database.

    python bench/dashboard.py
    python bench/dashboard.py --levels street --periods 2019 --repeat 5

For each scenario (a level and a period, and one comparison of the period with the year
before) it fetches what ``/command/dashboard`` needs to draw one page: the indicator table of
the level, the street bars, the district's 12-month trend, the period comparison when asked
for, and the case summary (and the grid leaders at grid level). Two ways:

- **old**: the calls the page made before ``gis.command_centre.dashboard_figures`` (one
  ``unit_indicators`` per table, bar chart and trend month, ``compare_periods``), on the
  reference queries (``reference=True``: one statement per period, one correlated spatial
  search per closed case);
- **new**: what the page calls now, ``dashboard_figures``: one set-based statement for all the
  page's periods, then the summary.

Both run on the same data in the same process, alternating, ``--repeat`` times; a scenario's
time is the median. Every figure of the two must be equal (``disagreements`` counts the frames
and summaries that are not).

The data are a scratch copy of the demo database ``gridgov`` (or of ``--database-url``):
``gridgov_bench_<pid>_dashboard``, created from it as a template and dropped at the end. The old
way runs there on the schema as it was: in a transaction that drops migration 0007's index on
``case_file.reported_at`` and is rolled back (with the index the planner runs the old
correlated search by report time, several times slower: that would flatter the new way).
``--in-place`` reads the database itself instead, old way on its current schema, when a copy
cannot be made (a template must have no other connections). It prints a table and, last, one
JSON line (also returned by :func:`main`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import Connection, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.assign import ScratchDatabase, sigterm_as_exit  # noqa: E402
from gis import command_centre as centre  # noqa: E402
from gis.case_summary import default_period, summarise_cases  # noqa: E402
from gis.database import database_url, get_engine  # noqa: E402
from gis.indicators import compare_periods, unit_indicators  # noqa: E402
from gis.periods import Period, months_ending, parse_period  # noqa: E402

LEVELS = ("district", "street", "community")


def old_page(conn: Connection, level: str, period: Period, compare: Period | None,
             now: datetime) -> dict:
    """The gis calls of one dashboard page as webmap.command.dashboard made them before
    dashboard_figures (commit e8766db), on the reference queries they ran then."""
    table = unit_indicators(conn, level, period, as_of=now, reference=True)
    leaders = centre.grid_leaders(conn) if level == "grid" else None
    streets = (table if level == "street" else
               unit_indicators(conn, "street", period, as_of=now, reference=True))
    trend = [unit_indicators(conn, "district", m, as_of=now, reference=True).iloc[0]
             for m in months_ending(period, centre.TREND_MONTHS)]
    comparison = (compare_periods(conn, level, compare, period, as_of=now, reference=True)
                  if compare else None)
    summary = summarise_cases(conn, period, now)
    return {"table": table, "leaders": leaders, "streets": streets, "trend": trend,
            "comparison": comparison, "summary": summary}


def old_page_on_old_schema(conn: Connection, level: str, period: Period,
                           compare: Period | None, now: datetime) -> dict:
    """:func:`old_page` without migration 0007's index (dropped in a transaction that is
    rolled back: on a scratch copy only, it locks ``case_file`` meanwhile)."""
    conn.rollback()
    with conn.begin() as transaction:
        conn.execute(text("DROP INDEX IF EXISTS ix_case_file_reported"))
        page = old_page(conn, level, period, compare, now)
        transaction.rollback()
    return page


def new_page(conn: Connection, level: str, period: Period, compare: Period | None,
             now: datetime) -> dict:
    """The gis calls of one dashboard page as webmap.command.dashboard makes them now."""
    figures = centre.dashboard_figures(conn, level, period, now=now, compare=compare)
    leaders = centre.grid_leaders(conn) if level == "grid" else None
    return {"table": figures.table, "leaders": leaders, "streets": figures.streets,
            "trend": [district for _, district in figures.trend],
            "comparison": figures.comparison, "summary": figures.summary}


def disagreements(old: dict, new: dict) -> list[str]:
    """The parts of two pages whose figures are not exactly equal."""
    out = []
    for part in ("table", "streets", "comparison"):
        try:
            if (old[part] is None) != (new[part] is None):
                raise AssertionError("one is missing")
            if old[part] is not None:
                pd.testing.assert_frame_equal(old[part], new[part], check_exact=True)
        except AssertionError:
            out.append(part)
    try:
        assert len(old["trend"]) == len(new["trend"])
        for a, b in zip(old["trend"], new["trend"], strict=True):
            pd.testing.assert_series_equal(a, b, check_exact=True)
    except AssertionError:
        out.append("trend")
    out += [part for part in ("summary", "leaders") if old[part] != new[part]]
    return out


@dataclass(frozen=True)
class Scenario:
    level: str
    period: Period
    compare: Period | None = None

    @property
    def label(self) -> str:
        vs = f" vs {self.compare.label}" if self.compare else ""
        return f"{self.level} {self.period.label}{vs}"


def scenarios(conn: Connection, args: argparse.Namespace) -> list[Scenario]:
    year = default_period(conn)
    periods = ([parse_period(p) for p in args.periods.split(",")] if args.periods else
               [year, parse_period(f"{year.label}Q2"), parse_period(f"{year.label}-05")])
    levels = args.levels.split(",")
    out = [Scenario(level, period) for level in levels for period in periods]
    if not args.no_compare:
        first = periods[0]
        before = parse_period(str(first.start.year - 1)) if first.label.isdigit() else None
        if before is not None:
            out.append(Scenario("street" if "street" in levels else levels[0], first, before))
    return out


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="the database to read (default: gridgov's)")
    parser.add_argument("--levels", default=",".join(LEVELS),
                        help="comma-separated levels (default: %(default)s)")
    parser.add_argument("--periods", help="comma-separated periods (default: the last "
                        "complete year with cases, its Q2 and its May)")
    parser.add_argument("--no-compare", action="store_true",
                        help="leave out the comparison scenario (the first period, if a year, "
                        "against the year before)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--in-place", action="store_true",
                        help="read the database itself, not a scratch copy; the old way then "
                        "runs on the current schema")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; prints the table and, last, one JSON line (also returned)."""
    args = parse_args(argv)
    source = args.database_url or database_url()
    with sigterm_as_exit(), ExitStack() as stack:
        if args.in_place:
            url, old = source, old_page
            setting = "in place; old way on the current schema"
        else:
            get_engine(source).dispose()
            try:
                scratch = stack.enter_context(ScratchDatabase(
                    source, "dashboard", template=make_url(source).database))
            except psycopg.errors.ObjectInUse as exc:
                raise SystemExit(f"cannot copy {make_url(source).database}: {exc}; close its "
                                 "other connections or use --in-place") from None
            url, old = scratch.url, old_page_on_old_schema
            setting = "scratch copy; old way without index 0007"
        result = run(get_engine(url), args, old, setting)
        get_engine(url).dispose()
    print(json.dumps(result, ensure_ascii=False))
    return result


def run(engine, args: argparse.Namespace, old: Callable, setting: str) -> dict:
    now = datetime.now(UTC)
    rows, wrong = [], []
    with engine.connect() as conn:
        cases = conn.execute(text("SELECT count(*) FROM case_file")).scalar_one()
        plan = scenarios(conn, args)
        print(f"database {engine.url.database} ({setting}): {cases:,} cases; old and new "
              f"alternating, median of {args.repeat} runs")
        print(f"{'scenario':<28} {'old s':>9} {'new s':>9} {'old/new':>8}")
        for scenario in plan:
            def page(way: Callable, s: Scenario = scenario) -> dict:
                conn.rollback()
                return way(conn, s.level, s.period, s.compare, now)

            differ = disagreements(page(old), page(new_page))  # also warms the caches
            wrong += [f"{scenario.label}: {part}" for part in differ]
            old_times, new_times = [], []
            for _ in range(args.repeat):
                old_times.append(timed(lambda: page(old)))
                new_times.append(timed(lambda: page(new_page)))
            old_s, new_s = statistics.median(old_times), statistics.median(new_times)
            rows.append({"scenario": scenario.label, "old_s": round(old_s, 4),
                         "new_s": round(new_s, 4), "ratio": round(old_s / new_s, 1),
                         "disagreements": len(differ)})
            print(f"{scenario.label:<28} {old_s:>9.3f} {new_s:>9.3f} {old_s / new_s:>7.1f}x"
                  + (f"  DIFFERENT: {', '.join(differ)}" if differ else ""))
        conn.rollback()
    old_total, new_total = sum(r["old_s"] for r in rows), sum(r["new_s"] for r in rows)
    result = {"database": engine.url.database, "setting": setting, "cases": cases,
              "repeat": args.repeat, "scenarios": rows, "old_total_s": round(old_total, 4),
              "new_total_s": round(new_total, 4),
              "ratio_total": round(old_total / new_total, 1),
              "ratio_min": min(r["ratio"] for r in rows),
              "new_max_s": max(r["new_s"] for r in rows),
              "disagreements": len(wrong)}
    print(f"total {old_total:.3f} s old, {new_total:.3f} s new ({old_total / new_total:.1f}x); "
          f"slowest new page {result['new_max_s']:.3f} s; {len(wrong)} disagreements")
    return result


if __name__ == "__main__":
    main()
