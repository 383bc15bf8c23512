"""The command-centre dashboard's service calls, timed on the demo database.

    python bench/dashboard.py
    python bench/dashboard.py --levels street --periods 2019 --repeat 5

For each scenario (a level and a period, and one comparison of the period with the year
before) it makes the ``gis`` calls that ``/command/dashboard`` makes to draw one page: the
indicator table of the level, the street bars, the district's 12-month trend, the period
comparison when asked for, and the case summary. The database is only read (the demo database
``gridgov`` by default, or ``--database-url``). The time of a scenario is the median of
``--repeat`` runs. It prints a table and, last, one JSON line (also returned by :func:`main`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, text  # noqa: E402

from gis import command_centre as centre  # noqa: E402
from gis.case_summary import default_period, summarise_cases  # noqa: E402
from gis.database import database_url, get_engine  # noqa: E402
from gis.indicators import compare_periods, unit_indicators  # noqa: E402
from gis.periods import Period, parse_period  # noqa: E402

LEVELS = ("district", "street", "community")


def month_periods(period: Period, count: int = 12) -> list[Period]:
    """The ``count`` months ending with the period's last month (the page's trend)."""
    last = (period.end - timedelta(days=1)).date()
    months = []
    for back in range(count - 1, -1, -1):
        index = last.year * 12 + last.month - 1 - back
        months.append(parse_period(f"{index // 12}-{index % 12 + 1:02d}"))
    return months


def page_calls(conn: Connection, level: str, period: Period, compare: Period | None,
               now: datetime) -> dict:
    """The gis calls of one dashboard page (webmap.command.dashboard), in its order."""
    table = unit_indicators(conn, level, period)
    leaders = centre.grid_leaders(conn) if level == "grid" else None
    streets = table if level == "street" else unit_indicators(conn, "street", period)
    trend = [unit_indicators(conn, "district", m) for m in month_periods(period)]
    comparison = compare_periods(conn, level, compare, period) if compare else None
    summary = summarise_cases(conn, period, now)
    return {"table": table, "leaders": leaders, "streets": streets, "trend": trend,
            "comparison": comparison, "summary": summary}


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; prints the table and, last, one JSON line (also returned)."""
    args = parse_args(argv)
    url = args.database_url or database_url()
    engine = get_engine(url)
    now = datetime.now(UTC)
    rows = []
    with engine.connect() as conn:
        cases = conn.execute(text("SELECT count(*) FROM case_file")).scalar_one()
        plan = scenarios(conn, args)
        print(f"database {engine.url.database}: {cases:,} cases; median of {args.repeat} runs")
        print(f"{'scenario':<28} {'page s':>9}")
        for scenario in plan:
            def page(s: Scenario = scenario) -> dict:
                return page_calls(conn, s.level, s.period, s.compare, now)

            page()  # warm the caches
            seconds = statistics.median(timed(page) for _ in range(args.repeat))
            rows.append({"scenario": scenario.label, "page_s": round(seconds, 4)})
            print(f"{scenario.label:<28} {seconds:>9.3f}")
    result = {"database": engine.url.database, "cases": cases, "repeat": args.repeat,
              "scenarios": rows,
              "page_total_s": round(sum(r["page_s"] for r in rows), 4)}
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
