"""`gridgov supervision`, `checks`, `credit` and `warnings` on a small world and on the shipped
demo data."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from etl.cli import main
from etl.supervision import SUPERVISION_DIR, load_supervision
from etl.supervision_demo import generate_demo
from gis.boundaries import activate, create_generation
from gis.database import get_engine
from gis.partition import write_geopackage
from tests.factories import small_hierarchy

DEPARTMENTS = [("msb", "市场监督管理局", None),
               ("market_enforcement_team", "市场监管综合执法大队", "msb"),
               ("hhc", "卫生健康委员会", None), ("health_supervision_team", "卫生监督所", "hhc"),
               ("emb", "应急管理局", None),
               ("safety_enforcement_team", "安全生产执法大队", "emb"), ("eeb", "生态环境局", None)]


def add_departments(engine) -> None:
    with engine.begin() as conn:
        for code, name, parent in DEPARTMENTS:
            conn.execute(text(
                """INSERT INTO department (code, name, kind, parent_id)
                   VALUES (:c, :n, :k, (SELECT id FROM department WHERE code = :p))"""),
                {"c": code, "n": name, "p": parent,
                 "k": "bureau" if parent is None else "professional_team"})


def small_gpkg(path):
    levels = small_hierarchy()
    for level, frame in levels.items():
        frame["level"] = level
        for column in ("parent_code", "grid_type", "dedicated_kind"):
            if column not in frame:
                frame[column] = None
    write_geopackage(levels, path)
    return path


@pytest.fixture
def gridgov(fresh_url, monkeypatch):
    engine = get_engine(fresh_url)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    add_departments(engine)
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.engine = engine
    return run


@pytest.fixture
def demo(gridgov, tmp_path):
    folder = tmp_path / "sup"
    gridgov("supervision", "demo", "--boundaries", small_gpkg(tmp_path / "small.gpkg"),
            "--out", folder, "--targets", 120)
    return folder


def test_demo_data_is_deterministic(tmp_path):
    first = generate_demo(small_hierarchy(), tmp_path / "a", targets=50)
    generate_demo(small_hierarchy(), tmp_path / "b", targets=50)
    assert first["targets"] == 50 and first["credit_records"] > 50
    for name in ("items.csv", "targets.csv", "inspectors.csv", "relations.csv", "plans.json",
                 "credit_records.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_draw_verify_and_publish(gridgov, demo, tmp_path):
    out = gridgov("supervision", "load", "--dir", demo).output
    assert "8 items, 120 targets" in out and "1 plans" in out
    first = gridgov("checks", "draw", "--plan", "demo", "--seed", "20190701").output
    assert first.splitlines()[0] == "draw 1"
    refused = gridgov("checks", "draw", "--plan", "demo", ok=False)
    assert refused.exit_code == 1 and "needs a reason" in refused.output
    again = json.loads(gridgov("checks", "draw", "--plan", "demo", "--seed", "2", "--reason",
                               "名录更新", "--json").output)
    assert again["id"] == 2 and again["seq"] == 2
    verified = gridgov("checks", "verify", "1").output
    assert verified.strip().endswith("draw 1: verified")
    assert json.loads(gridgov("checks", "verify", "2", "--json").output)["ok"]
    assert [d["seq"] for d in json.loads(gridgov("checks", "list", "--json").output)] == [2, 1]
    shown = gridgov("checks", "show", "1").output
    with open(demo / "inspectors.csv", encoding="utf-8") as handle:
        people = list(csv.DictReader(handle))
    assert all(p["id_number"] not in shown and p["phone"] not in shown for p in people)
    assert json.loads(shown)["visits"]
    assert "0 results" in gridgov("checks", "export", tmp_path / "public.csv").output


def test_record_and_export_a_result(gridgov, demo, tmp_path):
    gridgov("supervision", "load", "--dir", demo)
    gridgov("checks", "draw", "--plan", "demo", "--seed", "11")
    with gridgov.engine.connect() as conn:
        result = json.loads(conn.execute(text("SELECT result_json FROM spot_check_draw"))
                            .scalar_one())
        visit_ids = conn.execute(text("SELECT id FROM spot_check_visit ORDER BY seq")).scalars()
        visit_id, visit = next((v, r) for v, r in zip(visit_ids, result["visits"], strict=True)
                               if r["status"] == "assigned")
    item = visit["items"][0]
    team = visit["assignments"][item]
    gridgov("checks", "record", visit_id, item, "--outcome", "rectify", "--inspectors",
            ",".join(team), "--recorder", team[0], "--on", "2019-08-01", "--findings", "整改")
    gridgov("checks", "export", tmp_path / "public.json")
    (row,) = json.loads((tmp_path / "public.json").read_text(encoding="utf-8"))
    assert row["outcome"] == "rectify" and len(row["inspectors"]) == len(team)
    assert all("*" in p["id_number"] for p in row["inspectors"])
    gridgov("checks", "export", tmp_path / "public.csv")
    with open(tmp_path / "public.csv", encoding="utf-8") as handle:
        (flat,) = list(csv.DictReader(handle))
    assert flat["item_code"] == item and "执法证" in flat["inspectors"]


def test_credit_exchange_round_trip_query_and_refresh(gridgov, demo, tmp_path):
    gridgov("supervision", "load", "--dir", demo)
    exported = tmp_path / "out.jsonl"
    count = int(gridgov("credit", "export", exported).output.split()[1])
    with open(demo / "credit_records.jsonl", encoding="utf-8") as handle:
        assert count == sum(1 for _ in handle)
    out = gridgov("credit", "import", exported, "--source", "local", "--on", "2019-06-30")
    assert f"0 inserted, 0 updated, {count} unchanged, 0 rejected" in out.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"record_id": "X"}\nnot json\n', encoding="utf-8")
    out = gridgov("credit", "import", bad, "--json").output
    assert json.loads(out)["rejected"] == 2
    rejects = (tmp_path / "bad.jsonl.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["line"] for r in rejects] == [1, 2]
    first = json.loads((demo / "credit_records.jsonl").open(encoding="utf-8").readline())
    profile, = json.loads(gridgov("credit", "query", first["subject_id"], "--json").output)
    assert profile["name"] == first["subject_name"] and profile["level"] in "ABCD"
    assert "*" in profile["legal_representative"]
    assert "subjects" in gridgov("credit", "refresh", "--on", "2019-06-30").output
    csv_out = tmp_path / "out.csv"
    gridgov("credit", "export", csv_out, "--source", "city")
    assert csv_out.read_text(encoding="utf-8").startswith("record_id,source,")


def test_warnings_scan_runs_on_an_empty_period(gridgov, tmp_path):
    out = json.loads(gridgov("warnings", "scan", "--period", "2019-05", "--json").output)
    assert out["warnings"] == [] and out["n_series"] == 16 * 3
    assert out["seasonal"] and {f["factor"] for f in out["seasonal_factors"].values()} == {1.0}
    off = json.loads(gridgov("warnings", "scan", "--period", "2019-05", "--no-seasonal",
                             "--dry-run", "--json").output)
    assert not off["seasonal"] and off["seasonal_factors"] == {}
    page = tmp_path / "w.html"
    gridgov("warnings", "scan", "--period", "2019-05", "--dry-run", "--map", page)
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert gridgov("warnings", "list").output == ""


def test_bad_rows_are_all_reported_and_nothing_is_loaded(gridgov, demo):
    lines = (demo / "targets.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[2].split(",")
    fields[0] = fields[0][:-1] + ("0" if fields[0][-1] != "0" else "1")  # wrong check char
    lines[2] = ",".join(fields)
    fields = lines[3].split(",")
    fields[6] = "121.5"  # far east of the district
    lines[3] = ",".join(fields)
    (demo / "targets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    people = (demo / "inspectors.csv").read_text(encoding="utf-8").splitlines()
    people[1] = people[1].replace("market_enforcement_team", "no_such_team")
    (demo / "inspectors.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    result = gridgov("supervision", "load", "--dir", demo, ok=False)
    assert result.exit_code == 1 and "nothing was loaded" in result.output
    assert "targets.csv line 3: credit_code" in result.output
    assert "targets.csv line 4: lon" in result.output
    assert "inspectors.csv line 2: department" in result.output
    with gridgov.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inspection_item")).scalar() == 0


@pytest.mark.slow
def test_the_shipped_demo_data_loads_and_draws(fresh_engine):
    """The files in data/catalogues/supervision load onto the shipped Liangxi grids."""
    from gis.boundaries import load_shipped
    from gis.organisation import load_departments
    from gis.spotcheck import draw, verify_draw

    load_shipped(fresh_engine)
    load_departments(fresh_engine)
    counts = load_supervision(fresh_engine, SUPERVISION_DIR)
    assert counts["targets"] == 600 and counts["plans"] == 1
    assert sum(v for k, v in counts.items() if k.startswith("level_")) == 600
    with fresh_engine.begin() as conn:
        record = draw(conn, "demo", seed="20190701")
    assert record.visits > 20 and not record.understaffed
    with fresh_engine.connect() as conn:
        assert verify_draw(conn, record.id).ok
