"""Spot-check draws: fairness over many seeded draws, reproducibility, recusal, joint visits,
append-only records, verification, results and their publication."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date
from math import ceil, floor

import pytest
from scipy import stats
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from etl.supervision import load_supervision
from gis.credit import refresh, uscc_check_char
from gis.spotcheck import (
    DEFAULT_TIERS,
    DrawExists,
    SpotCheckError,
    check_tiers,
    compute_draw,
    digest,
    draw,
    list_draws,
    public_draw,
    public_results,
    record_result,
    tier_of,
    uniform,
    verify_draw,
)
from tests.factories import lattice

SEEDS = [str(s) for s in range(400)]
TIERS = check_tiers([dict(t) for t in DEFAULT_TIERS])


def code(n: int, prefix: str = "91320213") -> str:
    body = prefix + f"{n:09d}"
    return body + uscc_check_char(body)


def inputs(targets: list[dict], inspectors: list[dict], *, items=None, relations=(),
           tiers=TIERS, minimum: int = 2) -> dict:
    items = items or [{"code": "I1", "departments": ["d1"], "object_type": "shop",
                       "qualification": "q1"}]
    return {"algorithm": "gridgov-draw/1",
            "plan": {"name": "p", "period": "2019Q3", "tiers": tiers, "min_inspectors": minimum},
            "items": items, "targets": sorted(targets, key=lambda t: t["id"]),
            "inspectors": sorted(inspectors, key=lambda i: i["id"]),
            "relations": sorted(list(r) for r in relations)}


def target(n: int, level: str = "B", complaints: int = 0, street: str = "s1",
           items=("I1",)) -> dict:
    return {"id": code(n), "street": street, "credit_level": level, "complaints": complaints,
            "items": list(items)}


def inspector(n: int, street: str = "s9", department: str = "d1", quals=("q1",)) -> dict:
    return {"id": f"P{n:03d}", "department": department, "street": street,
            "qualifications": list(quals)}


# -- tiers ---------------------------------------------------------------------------------------
def test_credit_level_and_complaints_set_the_ratio():
    assert tier_of(TIERS, "D", 0)["ratio"] == 0.30
    assert tier_of(TIERS, "C", 0)["ratio"] == 0.10
    assert tier_of(TIERS, "B", 0)["ratio"] == 0.02
    assert tier_of(TIERS, "A", 0)["ratio"] == 0.01
    assert tier_of(TIERS, "A", 1)["name"] == "elevated"
    assert tier_of(TIERS, "B", 3)["name"] == "high"


def test_tiers_are_checked():
    with pytest.raises(SpotCheckError, match="no tier for credit level A"):
        check_tiers([{"name": "x", "ratio": 0.1, "credit_levels": ["B", "C", "D"]}])
    with pytest.raises(SpotCheckError, match="ratio"):
        check_tiers([{"name": "x", "ratio": 1.5, "credit_levels": list("ABCD")}])
    custom = check_tiers([{"name": "bad", "ratio": 0.5, "credit_levels": ["D", "C"]},
                          {"name": "rest", "ratio": 0.05, "credit_levels": ["A", "B"]}])
    assert tier_of(custom, "C", 0)["ratio"] == 0.5


# -- the algorithm -------------------------------------------------------------------------------
def test_hashes_are_plain_sha256_of_the_joined_text():
    assert digest("42", "target", "I1", "X") == hashlib.sha256(b"42|target|I1|X").hexdigest()
    u = uniform("42", "count", "I1", "high")
    assert u == int(hashlib.sha256(b"42|count|I1|high").hexdigest()[:13], 16) / 16 ** 13


def test_same_seed_and_inputs_give_the_same_draw():
    data = inputs([target(n, "ABCD"[n % 4]) for n in range(200)],
                  [inspector(n) for n in range(6)])
    assert compute_draw("7", data) == compute_draw("7", json.loads(json.dumps(data)))
    assert compute_draw("7", data)["visits"] != compute_draw("8", data)["visits"]


def test_drawn_count_is_within_one_of_ratio_times_eligible():
    data = inputs([target(n, "ABCD"[n % 4]) for n in range(203)],
                  [inspector(n) for n in range(6)])
    for seed in SEEDS[:50]:
        for stratum in compute_draw(seed, data)["strata"]:
            exact = stratum["ratio"] * stratum["eligible"]
            assert floor(exact) <= stratum["drawn"] <= ceil(exact)


def test_each_target_is_drawn_at_its_tier_ratio():
    """Over 400 seeded draws, every target's inclusion count is within the two-sided 99.99%
    binomial bounds of its tier's ratio (Bonferroni over the targets), and the counts within a
    tier are uniform (chi-square)."""
    levels = ["D"] * 20 + ["C"] * 30 + ["B"] * 50 + ["A"] * 50 + ["A"] * 10
    complaints = [0] * 150 + [3] * 10  # A with 3 complaints: the high tier
    targets = [target(n, lv, c) for n, (lv, c) in enumerate(zip(levels, complaints,
                                                                 strict=True))]
    data = inputs(targets, [inspector(n) for n in range(30)])
    counts = Counter()
    for seed in SEEDS:
        for visit in compute_draw(seed, data)["visits"]:
            counts[visit["target"]] += 1
    alpha = 1e-4 / len(targets)
    by_tier: dict[str, list[int]] = {}
    for t in targets:
        ratio = tier_of(TIERS, t["credit_level"], t["complaints"])["ratio"]
        low, high = stats.binom.ppf([alpha / 2, 1 - alpha / 2], len(SEEDS), ratio)
        assert low <= counts[t["id"]] <= high, (t, counts[t["id"]])
        by_tier.setdefault(ratio, []).append(counts[t["id"]])
    for ratio, observed in by_tier.items():
        total = sum(observed)
        assert abs(total / (len(observed) * len(SEEDS)) - ratio) < 4 * (
            ratio * (1 - ratio) / (len(observed) * len(SEEDS))) ** 0.5
        if ratio >= 0.1:
            assert stats.chisquare(observed).pvalue > 1e-3


def test_inspectors_load_is_balanced_within_a_draw_and_fair_across_draws():
    everyone = [target(n, "D") for n in range(90)]
    tiers = check_tiers([{"name": "all", "ratio": 1, "credit_levels": list("ABCD")}])
    data = inputs(everyone, [inspector(n) for n in range(12)], tiers=tiers)
    result = compute_draw("1", data)
    loads = Counter(i for v in result["visits"] for i in v["inspectors"])
    assert sum(loads.values()) == 180 and max(loads.values()) - min(loads.values()) <= 1
    pairing = Counter()
    for seed in SEEDS[:300]:
        first = next(v for v in compute_draw(seed, data)["visits"]
                     if v["target"] == everyone[0]["id"])
        pairing.update(first["inspectors"])
    assert len(pairing) == 12 and stats.chisquare(list(pairing.values())).pvalue > 1e-3


def test_recused_inspectors_are_never_drawn():
    targets = [target(n, "D", street=f"s{n % 3}") for n in range(60)]
    people = [inspector(n, street=f"s{n % 4}") for n in range(10)]
    relations = [(people[0]["id"], targets[n]["id"]) for n in range(0, 60, 2)]
    data = inputs(targets, people, relations=relations)
    streets = {p["id"]: p["street"] for p in people}
    by_id = {t["id"]: t for t in targets}
    seen = 0
    for seed in SEEDS[:100]:
        for visit in compute_draw(seed, data)["visits"]:
            street = by_id[visit["target"]]["street"]
            for person in visit["inspectors"]:
                seen += 1
                assert streets[person] != street
                assert [person, visit["target"]] not in data["relations"]
    assert seen > 0


def test_a_target_with_too_few_eligible_inspectors_is_reported_not_understaffed():
    targets = [target(1, "D", street="s1"), target(2, "D", street="s2")]
    people = [inspector(1, street="s1"), inspector(2, street="s1"), inspector(3, street="s2")]
    tiers = check_tiers([{"name": "all", "ratio": 1, "credit_levels": list("ABCD")}])
    result = compute_draw("3", inputs(targets, people, tiers=tiers))
    visits = {v["target"]: v for v in result["visits"]}
    short = visits[targets[0]["id"]]
    assert short["status"] == "understaffed" and short["inspectors"] == []
    assert short["shortfall"] == [{"item": "I1", "needed": 2, "available": 1}]
    assert visits[targets[1]["id"]]["status"] == "assigned"
    assert sorted(visits[targets[1]["id"]]["inspectors"]) == ["P001", "P002"]
    assert result["understaffed"] == 1


def test_items_on_one_entity_merge_into_one_joint_visit():
    items = [{"code": "A1", "departments": ["msb", "msb_team"], "object_type": "shop",
              "qualification": "food"},
             {"code": "A2", "departments": ["msb", "msb_team"], "object_type": "shop",
              "qualification": "food"},
             {"code": "B1", "departments": ["emb"], "object_type": "shop",
              "qualification": "safety"}]
    people = ([inspector(n, department="msb_team", quals=("food",)) for n in range(4)]
              + [inspector(n, department="emb", quals=("safety",)) for n in range(4, 8)]
              + [inspector(9, department="emb", quals=("food",))])
    tiers = check_tiers([{"name": "all", "ratio": 1, "credit_levels": list("ABCD")}])
    result = compute_draw("5", inputs([target(1, items=("A1", "A2", "B1"))], people,
                                      items=items, tiers=tiers))
    (visit,) = result["visits"]
    assert visit["items"] == ["A1", "A2", "B1"] and len(visit["inspectors"]) == 4
    assert visit["assignments"]["A1"] == visit["assignments"]["A2"]
    food = {p["id"] for p in people if p["department"] == "msb_team"}
    safety = {p["id"] for p in people if p["department"] == "emb" and "safety" in
              p["qualifications"]}
    assert set(visit["assignments"]["A1"]) <= food and len(visit["assignments"]["A1"]) == 2
    assert set(visit["assignments"]["B1"]) <= safety and len(visit["assignments"]["B1"]) == 2


# -- in the database -----------------------------------------------------------------------------
ITEMS_CSV = """\
code,name,legal_basis,department,object_type,line,ratio,frequency,method,qualification,demo
SC-F1,食品经营检查,《中华人民共和国食品安全法》,msb,food,food_drug,0.05,每年1次,现场检查,food,true
SC-S1,安全生产检查,《中华人民共和国安全生产法》,emb,factory,production_safety,,每年1次,现场检查,safety,true
"""


def write_folder(folder, targets: list[tuple], inspectors: list[tuple], relations=(),
                 tiers=None) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "items.csv").write_text(ITEMS_CSV, encoding="utf-8")
    rows = ["credit_code,name,kind,object_types,legal_representative,address,lon,lat,crs,"
            "credit_level,complaints,demo"]
    for n, types, i, j, level in targets:
        x, y = lattice(i, j)
        rows.append(f"{code(n)},测试商户{n},enterprise,{types},张三丰,测试路{n}号,"
                    f"{x + 0.0013},{y + 0.0017},cgcs2000,{level},0,true")
    (folder / "targets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rows = ["code,name,id_number,phone,certificate,department,street_code,qualifications,"
            "active,demo"]
    rows += [f"P{n},检查员{n},11010519491231002X,13812345678,C{n},{dept},{street},{quals},true,"
             "true" for n, dept, street, quals in inspectors]
    (folder / "inspectors.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rows = ["inspector_code,credit_code,kind,note"]
    rows += [f"P{i},{code(t)},kinship," for i, t in relations]
    (folder / "relations.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    plan = {"name": "joint", "title": "联合抽查", "period": "2019Q3",
            "items": ["SC-F1", "SC-S1"]}
    if tiers is not None:
        plan["tiers"] = tiers
    (folder / "plans.json").write_text(json.dumps({"as_of": "2019-06-30", "plans": [plan]}),
                                       encoding="utf-8")


@pytest.fixture
def checked(world, tmp_path):
    """The small world with an emergency bureau, a food/factory registry of 16 targets (one
    per grid) and seven inspectors; every tier drawn at ratio 1, so every target is drawn."""
    engine = world[0]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name, kind) VALUES "
                          "('emb', '应急管理局', 'bureau')"))
    targets = [(n, "food;factory" if n % 4 == 0 else "food", i, j, "")
               for n, (i, j) in enumerate((i, j) for i in range(4) for j in range(4))]
    people = [(1, "msb", "320213001", "food"), (2, "msb", "320213002", "food"),
              (3, "msb", "", "food"), (7, "msb", "", "food"),
              (4, "emb", "320213001", "safety"), (5, "emb", "320213002", "safety"),
              (6, "emb", "", "safety")]
    tiers = [{"name": "all", "ratio": 1, "credit_levels": ["A", "B", "C", "D"]}]
    write_folder(tmp_path / "sup", targets, people, relations=[(3, 5)], tiers=tiers)
    load_supervision(engine, tmp_path / "sup")
    return engine


def test_draw_is_recorded_verified_and_published(checked):
    with checked.begin() as conn:
        record = draw(conn, "joint", seed="2019", drawn_by="tester")
    assert record.seq == 1 and record.visits == 16 and record.understaffed == []
    with checked.connect() as conn:
        check = verify_draw(conn, record.id)
        assert check.ok and check.inputs_current
        stored = conn.execute(text("SELECT * FROM spot_check_draw")).mappings().one()
        public = public_draw(conn, record.id)
    assert hashlib.sha256(stored["inputs_json"].encode()).hexdigest() == stored["inputs_sha256"]
    result = json.loads(stored["result_json"])
    assert result == compute_draw("2019", json.loads(stored["inputs_json"]))
    joint = [v for v in public["visits"] if len(v["items"]) == 2]
    assert len(joint) == 4 and all(len(v["inspectors"]) == 4 for v in joint)
    for visit in public["visits"]:
        for person in visit["inspectors"]:
            assert person["id_number"] == "110105********002X"
            assert person["phone"] == "138****5678"
    by_code = {v["target"]: v for v in result["visits"]}
    assert "P3" not in by_code[code(5)]["inspectors"]  # recorded relation
    for visit in result["visits"]:  # own street recused: grids of street 1 are i < 2
        n = int(visit["target"][8:17])
        own = "P1" if n < 8 else "P2"
        assert own not in visit["inspectors"]


def test_draws_are_append_only_and_a_redraw_needs_a_reason(checked):
    with checked.begin() as conn:
        first = draw(conn, "joint", seed="1")
    with pytest.raises(DrawExists), checked.begin() as conn:
        draw(conn, "joint", seed="2")
    with checked.begin() as conn:
        second = draw(conn, "joint", seed="2", reason="名录更新后重新抽取")
    assert (second.seq, second.period) == (2, first.period)
    with checked.connect() as conn:
        assert [d["id"] for d in list_draws(conn, "joint")] == [second.id, first.id]
    for sql in ("UPDATE spot_check_draw SET seed = 'x'", "DELETE FROM spot_check_draw",
                "UPDATE spot_check_visit SET status = 'assigned'",
                "DELETE FROM spot_check_visit"):
        with pytest.raises(sa_exc.DBAPIError, match="append-only"), checked.begin() as conn:
            conn.execute(text(sql))


def test_verify_detects_tampering_and_changed_registries(checked):
    with checked.begin() as conn:
        record = draw(conn, "joint", seed="77")
    with checked.begin() as conn:
        conn.execute(text("UPDATE inspection_target SET complaints = 4 WHERE credit_code = :c"),
                     {"c": code(1)})
    with checked.connect() as conn:
        check = verify_draw(conn, record.id)
    assert check.ok and not check.inputs_current
    with checked.begin() as conn:  # tampering needs the owner to switch the guard off
        conn.execute(text("ALTER TABLE spot_check_draw DISABLE TRIGGER "
                          "spot_check_draw_append_only"))
        result = json.loads(conn.execute(text("SELECT result_json FROM spot_check_draw"))
                            .scalar_one())
        result["visits"][0]["inspectors"].reverse()
        conn.execute(text("UPDATE spot_check_draw SET result_json = :r"),
                     {"r": json.dumps(result, sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=False)})
    with checked.connect() as conn:
        check = verify_draw(conn, record.id)
    assert not check.result_reproduced and not check.visits_match and not check.ok
    with checked.begin() as conn:
        conn.execute(text("UPDATE spot_check_draw SET inputs_json = replace(inputs_json, :a, :b)"),
                     {"a": '"complaints":0', "b": '"complaints":9'})
    with checked.connect() as conn:
        assert not verify_draw(conn, record.id).inputs_intact


def test_credit_level_feeds_the_draw_tiers(checked):
    from gis.credit_exchange import import_records

    record = {"record_id": "PEN-1", "subject_kind": "enterprise", "subject_id": code(2),
              "subject_name": "测试商户2", "kind": "penalty", "occurred_on": "2019-03-01",
              "serious": True, "amount": 200000}
    with checked.begin() as conn:
        import_records(conn, [(1, json.dumps(record))], file="t", checksum="0", source="city")
        refresh(conn, date(2019, 6, 30))
        conn.execute(text("UPDATE spot_check_plan SET tiers = CAST(:t AS jsonb)"),
                     {"t": json.dumps([dict(t) for t in DEFAULT_TIERS])})
        drawn = draw(conn, "joint", seed="9")
        inputs = json.loads(conn.execute(text(
            "SELECT inputs_json FROM spot_check_draw WHERE id = :i"), {"i": drawn.id}).scalar())
    levels = {t["id"]: t["credit_level"] for t in inputs["targets"]}
    assert levels[code(2)] == "D" and levels[code(3)] == "B"
    high = [s for s in compute_draw("9", inputs)["strata"] if s["tier"] == "high"]
    assert [(s["item"], s["ratio"], s["eligible"]) for s in high] == [("SC-F1", 0.3, 1)]


def test_results_are_recorded_by_the_inspecting_side_and_published_masked(checked):
    with checked.begin() as conn:
        record = draw(conn, "joint", seed="5")
        visit = conn.execute(text(
            """SELECT v.id, v.seq, t.credit_code FROM spot_check_visit v
               JOIN inspection_target t ON t.id = v.target_id
               WHERE v.draw_id = :d AND cardinality(v.item_codes) = 1 ORDER BY v.seq LIMIT 1"""),
            {"d": record.id}).one()
        result = json.loads(conn.execute(text("SELECT result_json FROM spot_check_draw"))
                            .scalar_one())
    team = result["visits"][visit.seq - 1]["assignments"]["SC-F1"]
    stranger = next(p for p in ("P1", "P2", "P3") if p not in team)
    for people, recorder, message in (([team[0]], team[0], "at least two"),
                                      ([team[0], stranger], team[0], "not drawn"),
                                      (team, stranger, "recorder")):
        with pytest.raises(SpotCheckError, match=message), checked.begin() as conn:
            record_result(conn, visit.id, "SC-F1", "compliant", inspected_on=date(2019, 8, 1),
                          inspectors=people, recorded_by=recorder)
    with checked.begin() as conn:
        first = record_result(conn, visit.id, "SC-F1", "rectify", inspected_on=date(2019, 8, 1),
                              inspectors=team, recorded_by=team[1], findings="索证索票不全")
        second = record_result(conn, visit.id, "SC-F1", "not_found",
                               inspected_on=date(2019, 8, 2), inspectors=team,
                               recorded_by=team[0])
        refresh(conn, date(2019, 9, 1))
    with checked.connect() as conn:
        rows = public_results(conn, plan="joint")
        supersedes = conn.execute(text("SELECT supersedes_id FROM spot_check_result WHERE id = :i"),
                                  {"i": second}).scalar()
        credit = conn.execute(text(
            """SELECT r.kind, r.outcome, r.inspection_result_id FROM credit_record r
               JOIN credit_subject s ON s.id = r.subject_id WHERE s.identifier = :c"""),
            {"c": visit.credit_code}).one()
        listed = conn.execute(text(
            """SELECT e.reason_code FROM credit_list_entry e
               JOIN credit_subject s ON s.id = e.subject_id WHERE s.identifier = :c"""),
            {"c": visit.credit_code}).scalars().all()
    assert supersedes == first
    assert tuple(credit) == ("inspection", "not_found", second)
    assert listed == ["unreachable"]
    (row,) = rows
    assert row["outcome"] == "not_found" and row["legal_representative"] == "张*"
    assert row["recorded_by"] == f"检查员{team[0][1:]}"
    assert all(p["id_number"] == "110105********002X" and p["phone"] == "138****5678"
               for p in row["inspectors"])
    assert "11010519491231002X" not in json.dumps(rows, ensure_ascii=False)
