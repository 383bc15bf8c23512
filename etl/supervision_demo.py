"""The demo supervision folder (``gridgov supervision demo``): a deterministic generator of
the spot-check list, targets, inspectors, relations, plans and credit records that
:func:`etl.supervision.load_supervision` reads (the files are described in its module and in
``data/catalogues/supervision/README.md``). Everything it writes is demo data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import shapely

from etl.supervision import (
    INSPECTOR_FIELDS,
    ITEM_FIELDS,
    RELATION_FIELDS,
    SUPERVISION_DIR,
    TARGET_FIELDS,
    write_csv,
)
from gis.credit import canonical_json, id_check_char, uscc_check_char
from gis.spotcheck import DEFAULT_MIN_INSPECTORS, DEFAULT_TIERS

# -- demo data -----------------------------------------------------------------------------------
DEMO_SEED = 2019
DEMO_AS_OF = date(2019, 6, 30)
DEMO_TARGETS = 600
DEMO_DEPARTMENT = "梁溪区市场监督管理局"

#: (code, name, legal basis, department, object type, line, ratio, frequency, method,
#: qualification): demo items after real ones; the legal bases name real laws.
DEMO_ITEMS = (
    ("SC-MSB-01", "企业公示信息抽查", "《企业信息公示暂行条例》第十四条", "msb",
     "registered_entity", "market_regulation", "0.03", "每年1次", "书面检查、实地核查",
     "market"),
    ("SC-MSB-02", "食品销售者经营条件及食品安全管理检查",
     "《中华人民共和国食品安全法》第一百一十条", "msb", "food_business", "food_drug", "0.05",
     "每年1次", "现场检查、抽样检验", "food_safety"),
    ("SC-MSB-03", "餐饮服务提供者食品安全检查", "《中华人民共和国食品安全法》第八十七条", "msb",
     "food_service", "food_drug", "0.05", "每年1次", "现场检查", "food_safety"),
    ("SC-MSB-04", "药品零售企业经营行为检查", "《中华人民共和国药品管理法》第九十九条", "msb",
     "drug_retail", "food_drug", "0.05", "每年1次", "现场检查", "drug_safety"),
    ("SC-HHC-01", "公共场所卫生监督检查", "《公共场所卫生管理条例》第十条", "hhc", "public_venue",
     "food_drug", "0.05", "每年1次", "现场检查、检测", "public_health"),
    ("SC-EMB-01", "生产经营单位安全生产条件检查", "《中华人民共和国安全生产法》第五十九条", "emb",
     "production_unit", "production_safety", "0.05", "每年1次", "现场检查", "work_safety"),
    ("SC-EMB-02", "危险化学品经营单位安全检查", "《危险化学品安全管理条例》第六条", "emb",
     "hazardous_chemicals", "production_safety", "0.1", "每年2次", "现场检查", "work_safety"),
    ("SC-EEB-01", "排污单位执行排污许可及污染防治检查", "《中华人民共和国环境保护法》第二十四条",
     "eeb", "pollutant_discharger", "environment", "0.05", "每年1次", "现场检查、监测",
     "environment"),
)
#: Businesses of the demo registry: (name suffix, kind, object types, weight).
DEMO_TRADES = (
    ("餐饮店", "individual_business", ("registered_entity", "food_service"), 18),
    ("小吃店", "individual_business", ("registered_entity", "food_service"), 10),
    ("餐饮管理有限公司", "enterprise", ("registered_entity", "food_service"), 6),
    ("便利店", "individual_business", ("registered_entity", "food_business"), 12),
    ("超市有限公司", "enterprise", ("registered_entity", "food_business"), 5),
    ("大药房有限公司", "enterprise", ("registered_entity", "drug_retail"), 5),
    ("宾馆有限公司", "enterprise", ("registered_entity", "public_venue"), 4),
    ("美容美发店", "individual_business", ("registered_entity", "public_venue"), 6),
    ("机械制造有限公司", "enterprise", ("registered_entity", "production_unit",
                                      "pollutant_discharger"), 6),
    ("纺织有限公司", "enterprise", ("registered_entity", "production_unit",
                                  "pollutant_discharger"), 4),
    ("化工贸易有限公司", "enterprise", ("registered_entity", "hazardous_chemicals"), 3),
    ("汽车维修有限公司", "enterprise", ("registered_entity", "production_unit",
                                      "pollutant_discharger"), 4),
    ("商贸有限公司", "enterprise", ("registered_entity",), 12),
    ("科技有限公司", "enterprise", ("registered_entity",), 8),
    ("行业协会", "social_organisation", ("public_venue",), 1),
)
#: Inspectors per (department, qualifications).
DEMO_INSPECTORS = (
    ("market_enforcement_team", ("market", "food_safety"), 14),
    ("market_enforcement_team", ("food_safety", "drug_safety"), 8),
    ("market_enforcement_team", ("market",), 6),
    ("health_supervision_team", ("public_health",), 8),
    ("safety_enforcement_team", ("work_safety",), 10),
    ("eeb", ("environment",), 8),
)
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁"
    "潘蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦"
    "邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬斌鹏辉建"
    "国志东海波宁雪梅琳晨浩宇"
)
SHOP_WORDS = "鑫盛隆兴福祥瑞丰源泰和安康顺达华美佳乐新锦宏恒信诚德惠民金阳光"
ROADS = ("中山路", "人民路", "解放路", "学前街", "崇宁路", "通扬路", "兴源路", "广益路", "扬名路",
         "金星路", "清扬路", "南长街", "北大街", "惠山街", "梁溪路", "运河东路")


def _uscc(rng: np.random.Generator, prefix: str) -> str:
    body = prefix + "".join(rng.choice(list("0123456789ABCDEFGHJKLMNPQRTUWXY"), 17 - len(prefix)))
    return body + uscc_check_char(body)


def _id_number(rng: np.random.Generator) -> str:
    birth = date(1965, 1, 1) + timedelta(days=int(rng.integers(0, 12000)))
    body = f"320213{birth:%Y%m%d}{int(rng.integers(0, 1000)):03d}"
    return body + id_check_char(body)


def _person(rng: np.random.Generator) -> str:
    return str(rng.choice(list(SURNAMES))) + "".join(
        rng.choice(list(GIVEN), int(rng.integers(1, 3))))


def _points_in(rng: np.random.Generator, geoms: np.ndarray,
               count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points, each uniform in the interior of a randomly chosen (area-weighted)
    polygon; returns the points and the chosen polygons' positions."""
    areas = shapely.area(geoms)
    picks = rng.choice(len(geoms), count, p=areas / areas.sum())
    out = np.empty((count, 2))
    for n, g in enumerate(geoms[picks]):
        minx, miny, maxx, maxy = g.bounds
        while True:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if shapely.contains_xy(g, x, y):
                out[n] = x, y
                break
    return out, picks


def demo_targets(levels: dict, rng: np.random.Generator, count: int) -> list[dict]:
    grids = levels["grid"]
    streets = dict(zip(levels["street"]["code"], levels["street"]["name"], strict=True))
    weights = np.array([t[3] for t in DEMO_TRADES], dtype=float)
    trades = rng.choice(len(DEMO_TRADES), count, p=weights / weights.sum())
    points, picks = _points_in(rng, grids.geometry.to_numpy(), count)
    rows, seen = [], set()
    for n, (trade, (lon, lat), grid) in enumerate(zip(trades, points, picks, strict=True)):
        suffix, kind, types, _ = DEMO_TRADES[trade]
        prefix = {"enterprise": "91320213", "individual_business": "92320213",
                  "social_organisation": "51320213"}[kind]
        code = _uscc(rng, prefix)
        while code in seen:
            code = _uscc(rng, prefix)
        seen.add(code)
        words = "".join(rng.choice(list(SHOP_WORDS), 2))
        street_code = str(grids["code"].iloc[int(grid)])[:9]
        complaints = int(rng.choice([0, 1, 2, 3, 5], p=[0.84, 0.09, 0.03, 0.02, 0.02]))
        rows.append({
            "credit_code": code, "name": f"无锡市梁溪区{words}{suffix}（演示{n + 1:04d}）",
            "kind": kind, "object_types": ";".join(types),
            "legal_representative": _person(rng),
            "address": f"梁溪区{streets.get(street_code, '')}{rng.choice(ROADS)}"
                       f"{int(rng.integers(1, 400))}号",
            "lon": f"{lon:.7f}", "lat": f"{lat:.7f}", "crs": "cgcs2000", "credit_level": "",
            "complaints": str(complaints), "demo": "true"})
    return rows


def demo_inspectors(levels: dict, rng: np.random.Generator) -> list[dict]:
    streets = sorted(levels["street"]["code"])
    rows, n = [], 0
    for department, qualifications, count in DEMO_INSPECTORS:
        for _ in range(count):
            n += 1
            rows.append({
                "code": f"INSP{n:04d}", "name": _person(rng), "id_number": _id_number(rng),
                "phone": f"13{int(rng.integers(0, 10))}{int(rng.integers(0, 10**8)):08d}",
                "certificate": f"32021300{n:04d}", "department": department,
                "street_code": str(rng.choice(streets)),
                "qualifications": ";".join(qualifications), "active": "true", "demo": "true"})
    return rows


def demo_relations(targets: list[dict], inspectors: list[dict],
                   rng: np.random.Generator, count: int) -> list[dict]:
    pairs = set()
    while len(pairs) < min(count, len(targets) * len(inspectors)):
        pairs.add((inspectors[int(rng.integers(len(inspectors)))]["code"],
                   targets[int(rng.integers(len(targets)))]["credit_code"]))
    kinds = ("kinship", "former_employee", "shareholder")
    return [{"inspector_code": i, "credit_code": c, "kind": str(rng.choice(kinds)),
             "note": "演示数据"} for i, c in sorted(pairs)]


def demo_credit_records(targets: list[dict], rng: np.random.Generator,
                        as_of: date) -> list[dict]:
    """Annual reports (mostly on time, some late, a few missing), penalties (some serious) and
    earlier inspections for the demo targets."""
    records: list[dict] = []

    def add(target: dict, kind: str, on: date, **fields) -> None:
        record = {"record_id": f"LX-DEMO-{len(records) + 1:06d}", "source": "local",
                  "subject_kind": target["kind"], "subject_id": target["credit_code"],
                  "subject_name": target["name"], "kind": kind, "occurred_on": on.isoformat(),
                  **fields}
        records.append({k: v for k, v in record.items() if v is not None})

    for target in targets:
        established = date(int(rng.integers(2006, 2019)), int(rng.integers(1, 13)),
                           int(rng.integers(1, 29)))
        add(target, "licence", established, title="设立登记（演示）", department=DEMO_DEPARTMENT,
            subject_established_on=established.isoformat(),
            subject_legal_representative=target["legal_representative"],
            subject_address=target["address"])
        if target["kind"] != "social_organisation":
            for year in range(max(2013, established.year), as_of.year):
                if date(year + 1, 6, 30) >= as_of:
                    continue
                roll = rng.random()
                if roll < 0.015:
                    continue
                late = roll < 0.045
                filed = (date(year + 1, 7, 1) + timedelta(days=int(rng.integers(0, 150)))
                         if late else date(year + 1, 1, 1) + timedelta(
                             days=int(rng.integers(0, 180))))
                if filed <= as_of:
                    add(target, "annual_report", filed, title=f"{year}年度报告", year=year,
                        department=DEMO_DEPARTMENT)
        _demo_history(add, target, rng, established, as_of)
    return records


def _demo_history(add: Callable, target: dict, rng: np.random.Generator, established: date,
                  as_of: date) -> None:
    start = max(established, date(2015, 1, 1))
    span = (as_of - start).days
    if span <= 0:
        return
    for _ in range(int(rng.choice([0] * 26 + [1, 1, 2]))):
        on = start + timedelta(days=int(rng.integers(0, span)))
        serious = bool(rng.random() < 0.08)
        add(target, "penalty", on, title="行政处罚（演示）", department=DEMO_DEPARTMENT,
            serious=serious, amount=f"{int(rng.integers(1, 200)) * 1000 * (10 if serious else 1)}"
            ".00")
    if rng.random() < 0.25:
        on = start + timedelta(days=int(rng.integers(0, span)))
        outcome = str(rng.choice(["compliant"] * 8 + ["rectify", "rectify", "not_found"]))
        add(target, "inspection", on, title="日常检查（演示）", department=DEMO_DEPARTMENT,
            outcome=outcome)
        if outcome == "not_found" and rng.random() < 0.5 and on + timedelta(days=60) < as_of:
            add(target, "address_verified", on + timedelta(days=int(rng.integers(30, 60))),
                title="住所核实（演示）", department=DEMO_DEPARTMENT)


def demo_plans(as_of: date) -> dict:
    return {"as_of": as_of.isoformat(), "plans": [{
        "name": "demo", "title": "2019年第三季度梁溪区部门联合“双随机、一公开”抽查（演示）",
        "period": "2019Q3", "items": [i[0] for i in DEMO_ITEMS],
        "tiers": [dict(t) for t in DEFAULT_TIERS], "min_inspectors": DEFAULT_MIN_INSPECTORS}]}


def generate_demo(levels: dict, out_dir: Path = SUPERVISION_DIR, *, seed: int = DEMO_SEED,
                  targets: int = DEMO_TARGETS, as_of: date = DEMO_AS_OF) -> dict[str, int]:
    """Write the demo supervision folder for a boundary hierarchy (deterministic by seed)."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    item_rows = [dict(zip(ITEM_FIELDS, (*i, "true"), strict=True)) for i in DEMO_ITEMS]
    target_rows = demo_targets(levels, rng, targets)
    inspector_rows = demo_inspectors(levels, rng)
    relation_rows = demo_relations(target_rows, inspector_rows, rng, max(5, targets // 30))
    records = demo_credit_records(target_rows, rng, as_of)
    write_csv(out_dir / "items.csv", ITEM_FIELDS, item_rows)
    write_csv(out_dir / "targets.csv", TARGET_FIELDS, target_rows)
    write_csv(out_dir / "inspectors.csv", INSPECTOR_FIELDS, inspector_rows)
    write_csv(out_dir / "relations.csv", RELATION_FIELDS, relation_rows)
    (out_dir / "plans.json").write_text(
        json.dumps(demo_plans(as_of), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    with open(out_dir / "credit_records.jsonl", "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(canonical_json(record) + "\n")
    return {"items": len(item_rows), "targets": len(target_rows),
            "inspectors": len(inspector_rows), "relations": len(relation_rows),
            "credit_records": len(records)}
