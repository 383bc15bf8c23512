"""Spot checks under "double random, one public" (双随机、一公开): draws, verification, results.

A draw is a pure function of a seed and a snapshot of its inputs (:func:`compute_draw`); the
snapshot (:func:`snapshot_inputs`) holds only the fields that matter, sorted, as canonical JSON.
Both texts are stored with their SHA-256, so anyone can re-check a draw by hand.

The algorithm ``gridgov-draw/1`` (docs/SUPERVISION.md §2), with ``H(a, b, …)`` the hex SHA-256
of the UTF-8 text ``a|b|…`` and ``U(…)`` its first 13 hex digits divided by 16¹³:

1. Targets. For each item (by code) and each risk tier of the plan (in the plan's order), the
   ``n`` eligible targets in that tier are ranked by ``H(seed, "target", item, credit_code)``
   ascending and the first ``k = floor(ratio · n + U(seed, "count", item, tier))`` are drawn.
   So each target is drawn with probability exactly ``ratio`` and ``k`` is within 1 of
   ``ratio · n``.
2. Visits. The items drawn for one target are merged into one visit (joint inspection); visits
   are taken in order of ``H(seed, "visit", credit_code)``.
3. Inspectors. For each item of a visit (by code), the candidates are the active inspectors of
   the item's department (or a department under it) who hold the item's qualification and are
   not recused: the inspector's own street is the target's street, or a relation is recorded.
   Inspectors already on the visit who qualify count; the rest, up to ``min_inspectors``, are
   taken in order of (visits assigned so far in this draw, ``H(seed, "inspector", credit_code,
   item, inspector_code)``). A visit that cannot get enough is reported ``understaffed`` with
   the shortfall, and that item gets nobody: it is never staffed by fewer.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from fractions import Fraction
from math import floor

from sqlalchemy import Connection, text

from gis.credit import (
    canonical_json,
    mask_id_number,
    mask_identifier,
    mask_person_name,
    mask_phone,
    sha256_text,
)
from gis.credit_exchange import RecordIn, upsert_record
from gis.models.supervision import CREDIT_LEVELS, OUTCOMES

ALGORITHM = "gridgov-draw/1"
DEFAULT_MIN_INSPECTORS = 2
#: Tiered practice seen: 30% / 10% / 2% / 1%. A target falls in the first tier whose credit
#: levels include its level, or whose ``min_complaints`` its complaint count reaches.
DEFAULT_TIERS: tuple[dict, ...] = (
    {"name": "high", "ratio": 0.30, "credit_levels": ["D"], "min_complaints": 3},
    {"name": "elevated", "ratio": 0.10, "credit_levels": ["C"], "min_complaints": 1},
    {"name": "normal", "ratio": 0.02, "credit_levels": ["B"]},
    {"name": "low", "ratio": 0.01, "credit_levels": ["A"]},
)
OUTCOME_LABELS = {"compliant": "未发现问题", "rectify": "发现问题已责令整改",
                  "penalty_referred": "发现问题移送立案查处", "not_found": "通过登记的住所无法联系"}
SEED = re.compile(r"[0-9A-Za-z_.:-]{1,100}")
TIER_NAME = re.compile(r"[a-z][a-z0-9_]{0,29}")


class SpotCheckError(ValueError):
    """Bad input to a draw or a result."""


class DrawExists(SpotCheckError):
    """The plan was already drawn for the period: a new draw needs a reason."""


# -- tiers and hashing ---------------------------------------------------------------------------
def check_tiers(tiers: object) -> list[dict]:
    """Validate a plan's tiers; every credit level must belong to some tier."""
    if not isinstance(tiers, list) or not tiers:
        raise SpotCheckError("tiers: a non-empty list of tiers is needed")
    out, names = [], set()
    for n, tier in enumerate(tiers, start=1):
        if not isinstance(tier, dict) or set(tier) - {"name", "ratio", "credit_levels",
                                                      "min_complaints"}:
            raise SpotCheckError(f"tier {n}: keys are name, ratio, credit_levels, "
                                 "min_complaints")
        name, ratio = tier.get("name"), tier.get("ratio")
        levels = tier.get("credit_levels", [])
        complaints = tier.get("min_complaints")
        if not isinstance(name, str) or not TIER_NAME.fullmatch(name) or name in names:
            raise SpotCheckError(f"tier {n}: name {name!r} is not a new lower-case name")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise SpotCheckError(f"tier {name}: ratio {ratio!r} is not in (0, 1]")
        if not isinstance(levels, list) or any(v not in CREDIT_LEVELS for v in levels):
            raise SpotCheckError(f"tier {name}: credit_levels must be a list of A, B, C, D")
        if complaints is not None and (isinstance(complaints, bool)
                                       or not isinstance(complaints, int) or complaints < 1):
            raise SpotCheckError(f"tier {name}: min_complaints must be a positive integer")
        names.add(name)
        entry = {"name": name, "ratio": ratio, "credit_levels": sorted(levels)}
        if complaints is not None:
            entry["min_complaints"] = complaints
        out.append(entry)
    missing = set(CREDIT_LEVELS) - {v for t in out for v in t["credit_levels"]}
    if missing:
        raise SpotCheckError(f"tiers: no tier for credit level {', '.join(sorted(missing))}")
    return out


def tier_of(tiers: list[dict], credit_level: str, complaints: int) -> dict:
    """The first tier the target's credit level or complaint count puts it in."""
    for tier in tiers:
        threshold = tier.get("min_complaints")
        if credit_level in tier["credit_levels"] or (threshold and complaints >= threshold):
            return tier
    raise SpotCheckError(f"no tier for credit level {credit_level!r}")


def digest(*parts: str) -> str:
    """``H``: hex SHA-256 of the parts joined by ``|``."""
    return sha256_text("|".join(parts))


def uniform(*parts: str) -> Fraction:
    """``U``: the first 13 hex digits of ``H`` over 16¹³, exactly, in [0, 1)."""
    return Fraction(int(digest(*parts)[:13], 16), 16 ** 13)


# -- the draw, pure ------------------------------------------------------------------------------
def draw_count(seed: str, item: str, tier: dict, n: int) -> int:
    """``k = floor(ratio · n + U)``: the decimal ratio taken exactly."""
    return min(n, floor(Fraction(str(tier["ratio"])) * n + uniform(seed, "count", item,
                                                                    tier["name"])))


def compute_draw(seed: str, inputs: dict) -> dict:
    """The draw ``gridgov-draw/1`` of ``inputs`` (a snapshot) under ``seed``."""
    plan, items = inputs["plan"], {i["code"]: i for i in inputs["items"]}
    tiers, targets = plan["tiers"], {t["id"]: t for t in inputs["targets"]}
    drawn: dict[str, list[str]] = defaultdict(list)
    strata = []
    for code in sorted(items):
        groups: dict[str, list[dict]] = defaultdict(list)
        for t in targets.values():
            if code in t["items"]:
                groups[tier_of(tiers, t["credit_level"], t["complaints"])["name"]].append(t)
        for tier in tiers:
            group = groups.get(tier["name"], [])
            if not group:
                continue
            k = draw_count(seed, code, tier, len(group))
            ranked = sorted(group, key=lambda t, c=code: digest(seed, "target", c, t["id"]))
            for t in ranked[:k]:
                drawn[t["id"]].append(code)
            strata.append({"item": code, "tier": tier["name"], "ratio": tier["ratio"],
                           "eligible": len(group), "drawn": k})
    visits = _staff_visits(seed, inputs, items, targets, drawn)
    return {"algorithm": ALGORITHM, "seed": seed,
            "inputs_sha256": sha256_text(canonical_json(inputs)), "strata": strata,
            "visits": visits, "understaffed": sum(v["status"] == "understaffed" for v in visits)}


def _staff_visits(seed: str, inputs: dict, items: dict, targets: dict,
                  drawn: dict[str, list[str]]) -> list[dict]:
    """Step 3: inspectors for each visit, visits in ``H(seed, "visit", credit_code)`` order."""
    relations = {(a, b) for a, b in inputs["relations"]}
    loads = {i["id"]: 0 for i in inputs["inspectors"]}
    visits = []
    for target_id in sorted(drawn, key=lambda t: digest(seed, "visit", t)):
        target, team = targets[target_id], []
        assignments: dict[str, list[str]] = {}
        shortfall = []
        for code in sorted(drawn[target_id]):
            pool = [i["id"] for i in inputs["inspectors"] if _eligible(i, items[code], target,
                                                                         relations)]
            have = [i for i in team if i in pool]
            fresh = sorted((i for i in pool if i not in team),
                           key=lambda i, c=code: (loads[i], digest(seed, "inspector", target_id,
                                                                   c, i)))
            need = max(0, inputs["plan"]["min_inspectors"] - len(have))
            if len(fresh) < need:
                shortfall.append({"item": code, "needed": inputs["plan"]["min_inspectors"],
                                  "available": len(have) + len(fresh)})
                assignments[code] = []
                continue
            for i in fresh[:need]:
                team.append(i)
                loads[i] += 1
            assignments[code] = have + fresh[:need]
        visits.append({"target": target_id, "items": sorted(drawn[target_id]),
                       "inspectors": team, "assignments": assignments,
                       "status": "understaffed" if shortfall else "assigned",
                       "shortfall": shortfall})
    return visits


def _eligible(inspector: dict, item: dict, target: dict, relations: set[tuple[str, str]]) -> bool:
    """Of the item's departments, qualified for it, and not recused from the target."""
    return (inspector["department"] in item["departments"]
            and item["qualification"] in inspector["qualifications"]
            and not _recused(inspector, target, relations))


def _recused(inspector: dict, target: dict, relations: set[tuple[str, str]]) -> bool:
    own_street = inspector["street"] is not None and inspector["street"] == target["street"]
    return own_street or (inspector["id"], target["id"]) in relations


# -- the snapshot --------------------------------------------------------------------------------
def _plan(conn: Connection, name: str, lock: bool = False):
    row = conn.execute(text(
        "SELECT * FROM spot_check_plan WHERE name = :n" + (" FOR UPDATE" if lock else "")),
        {"n": name}).mappings().first()
    if row is None:
        raise SpotCheckError(f"there is no plan {name!r} (load one: gridgov supervision load)")
    return row


def snapshot_inputs(conn: Connection, plan_name: str, period: str) -> dict:
    """The inputs of a draw of the plan for the period, from today's registries: the plan, its
    active items with their departments, the eligible targets and inspectors, the relations."""
    plan = _plan(conn, plan_name)
    items = [dict(r) for r in conn.execute(text(
        """
        WITH RECURSIVE below(item, id) AS (
            SELECT i.code, i.department_id FROM inspection_item i
            JOIN spot_check_plan_item p ON p.item_id = i.id
            WHERE p.plan_id = :plan AND i.active
            UNION SELECT b.item, d.id FROM department d JOIN below b ON d.parent_id = b.id
        )
        SELECT i.code, i.object_type, i.qualification,
               array_agg(DISTINCT d.code ORDER BY d.code) AS departments
        FROM inspection_item i JOIN below b ON b.item = i.code JOIN department d ON d.id = b.id
        GROUP BY i.code, i.object_type, i.qualification ORDER BY i.code
        """), {"plan": plan["id"]}).mappings()]
    if not items:
        raise SpotCheckError(f"plan {plan_name!r} has no active items")
    targets = _snapshot_targets(conn, items)
    inspectors = _snapshot_inspectors(conn, items)
    relations = [[r[0], r[1]] for r in conn.execute(text(
        """SELECT i.code, t.credit_code FROM inspector_relation r
           JOIN inspector i ON i.id = r.inspector_id JOIN inspection_target t ON t.id = r.target_id
           WHERE i.code = ANY(:i) AND t.credit_code = ANY(:t) ORDER BY 1, 2"""),
        {"i": [i["id"] for i in inspectors], "t": [t["id"] for t in targets]})]
    return {"algorithm": ALGORITHM,
            "plan": {"name": plan["name"], "period": period, "tiers": check_tiers(plan["tiers"]),
                     "min_inspectors": plan["min_inspectors"]},
            "items": items, "targets": targets, "inspectors": inspectors, "relations": relations}


def _snapshot_targets(conn: Connection, items: list[dict]) -> list[dict]:
    by_type: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_type[item["object_type"]].append(item["code"])
    rows = conn.execute(text(
        """SELECT t.credit_code, t.street_code, t.complaints, t.object_types,
                  coalesce(s.level, t.credit_level, 'B') AS level
           FROM inspection_target t LEFT JOIN credit_subject s ON s.identifier = t.credit_code
           WHERE t.active AND t.object_types && CAST(:types AS varchar[])
           ORDER BY t.credit_code"""), {"types": list(by_type)})
    return [{"id": r.credit_code, "street": r.street_code, "credit_level": r.level,
             "complaints": r.complaints,
             "items": sorted(c for t in r.object_types for c in by_type.get(t, []))}
            for r in rows]


def _snapshot_inspectors(conn: Connection, items: list[dict]) -> list[dict]:
    rows = conn.execute(text(
        """SELECT i.code, d.code AS department, i.street_code, i.qualifications
           FROM inspector i JOIN department d ON d.id = i.department_id
           WHERE i.active AND d.code = ANY(:d) AND i.qualifications && CAST(:q AS varchar[])
           ORDER BY i.code"""),
        {"d": sorted({d for i in items for d in i["departments"]}),
         "q": sorted({i["qualification"] for i in items})})
    return [{"id": r.code, "department": r.department, "street": r.street_code,
             "qualifications": sorted(r.qualifications)} for r in rows]


# -- drawing and verifying -----------------------------------------------------------------------
@dataclass(frozen=True)
class DrawRecord:
    id: int
    plan: str
    period: str
    seq: int
    seed: str
    inputs_sha256: str
    result_sha256: str
    visits: int
    understaffed: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def draw(conn: Connection, plan_name: str, *, period: str | None = None,
         seed: str | None = None, reason: str = "", drawn_by: str = "") -> DrawRecord:
    """Draw the plan for the period and record it (append-only) with its visits.

    A plan already drawn for the period is drawn again only with a ``reason``; the earlier
    draw stays. Without a ``seed`` a random 64-bit one is made (and recorded)."""
    plan = _plan(conn, plan_name, lock=True)
    period = period or plan["period"]
    if not period:
        raise SpotCheckError(f"plan {plan_name!r} has no period: give one")
    seed = seed if seed is not None else str(secrets.randbits(64))
    if not SEED.fullmatch(seed):
        raise SpotCheckError("seed: 1 to 100 letters, digits or _ . : -")
    last = conn.execute(text(
        "SELECT max(seq) FROM spot_check_draw WHERE plan_id = :p AND period = :period"),
        {"p": plan["id"], "period": period}).scalar()
    if last is not None and not reason.strip():
        raise DrawExists(f"plan {plan_name!r} was already drawn for {period} ({last} draw(s)); "
                         "a new draw needs a reason, and the earlier one stays on record")
    inputs = snapshot_inputs(conn, plan_name, period)
    inputs_json = canonical_json(inputs)
    result = compute_draw(seed, inputs)
    result_json = canonical_json(result)
    row = conn.execute(text(
        """INSERT INTO spot_check_draw (plan_id, period, seq, reason, seed, algorithm,
               inputs_json, inputs_sha256, result_json, result_sha256, drawn_by)
           VALUES (:p, :period, :seq, :reason, :seed, :alg, :ij, :ih, :rj, :rh, :by)
           RETURNING id"""),
        {"p": plan["id"], "period": period, "seq": (last or 0) + 1, "reason": reason.strip(),
         "seed": seed, "alg": ALGORITHM, "ij": inputs_json, "ih": sha256_text(inputs_json),
         "rj": result_json, "rh": sha256_text(result_json), "by": drawn_by}).scalar_one()
    _insert_visits(conn, row, result["visits"])
    return DrawRecord(row, plan_name, period, (last or 0) + 1, seed, sha256_text(inputs_json),
                      sha256_text(result_json), len(result["visits"]),
                      [{"target": v["target"], "shortfall": v["shortfall"]}
                       for v in result["visits"] if v["status"] == "understaffed"])


def _insert_visits(conn: Connection, draw_id: int, visits: list[dict]) -> None:
    if not visits:
        return
    targets = dict(conn.execute(text(
        "SELECT credit_code, id FROM inspection_target WHERE credit_code = ANY(:c)"),
        {"c": [v["target"] for v in visits]}).all())
    inspectors = dict(conn.execute(text("SELECT code, id FROM inspector")).all())
    conn.execute(text(
        """INSERT INTO spot_check_visit (draw_id, seq, target_id, item_codes, inspector_ids,
               status, note) VALUES (:d, :seq, :t, :items, :insp, :status, :note)"""),
        [{"d": draw_id, "seq": n, "t": targets[v["target"]], "items": v["items"],
          "insp": [inspectors[i] for i in v["inspectors"]], "status": v["status"],
          "note": _shortfall_note(v["shortfall"])} for n, v in enumerate(visits, start=1)])


def _shortfall_note(shortfall: list[dict]) -> str:
    return "; ".join(f"{s['item']}: {s['available']} of {s['needed']} qualified, unrecused "
                     "inspectors available" for s in shortfall)


@dataclass(frozen=True)
class Verification:
    draw_id: int
    inputs_intact: bool
    result_reproduced: bool
    visits_match: bool
    inputs_current: bool
    recorded_inputs_sha256: str
    current_inputs_sha256: str | None
    recorded_result_sha256: str
    recomputed_result_sha256: str

    @property
    def ok(self) -> bool:
        """The record is intact and the draw reproduces (today's registries aside)."""
        return self.inputs_intact and self.result_reproduced and self.visits_match

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def verify_draw(conn: Connection, draw_id: int) -> Verification:
    """Recompute a draw from its recorded seed and inputs and compare with what was recorded;
    also say whether today's registries still give the recorded inputs."""
    row = conn.execute(text(
        """SELECT d.*, p.name AS plan FROM spot_check_draw d
           JOIN spot_check_plan p ON p.id = d.plan_id WHERE d.id = :id"""),
        {"id": draw_id}).mappings().first()
    if row is None:
        raise SpotCheckError(f"there is no draw {draw_id}")
    inputs = json.loads(row["inputs_json"])
    recomputed = canonical_json(compute_draw(row["seed"], inputs))
    stored = json.loads(row["result_json"])
    try:
        current = sha256_text(canonical_json(snapshot_inputs(conn, row["plan"], row["period"])))
    except SpotCheckError:
        current = None
    return Verification(
        draw_id=draw_id,
        inputs_intact=sha256_text(row["inputs_json"]) == row["inputs_sha256"],
        result_reproduced=(recomputed == row["result_json"]
                           and sha256_text(recomputed) == row["result_sha256"]),
        visits_match=_stored_visits(conn, draw_id) == [
            (v["target"], v["items"], v["inspectors"], v["status"]) for v in stored["visits"]],
        inputs_current=current == row["inputs_sha256"],
        recorded_inputs_sha256=row["inputs_sha256"], current_inputs_sha256=current,
        recorded_result_sha256=row["result_sha256"],
        recomputed_result_sha256=sha256_text(recomputed))


def _stored_visits(conn: Connection, draw_id: int) -> list[tuple]:
    rows = conn.execute(text(
        """SELECT t.credit_code, v.item_codes, v.status,
                  array(SELECT i.code FROM unnest(v.inspector_ids) WITH ORDINALITY AS u(id, n)
                        JOIN inspector i ON i.id = u.id ORDER BY u.n) AS inspectors
           FROM spot_check_visit v JOIN inspection_target t ON t.id = v.target_id
           WHERE v.draw_id = :d ORDER BY v.seq"""), {"d": draw_id})
    return [(r.credit_code, list(r.item_codes), list(r.inspectors), r.status) for r in rows]


# -- results -------------------------------------------------------------------------------------
def record_result(conn: Connection, visit_id: int, item_code: str, outcome: str, *,
                  inspected_on: date, inspectors: list[str], recorded_by: str,
                  findings: str = "", published: bool = True) -> int:
    """Record the result of one item of a visit, as the inspecting side: ``inspectors`` (codes,
    at least two, all assigned to the item) inspected, ``recorded_by`` (one of them) records.
    A second result for the same visit and item supersedes the first. The result also becomes
    an ``inspection`` credit record of the target. Returns the result id."""
    if outcome not in OUTCOMES:
        raise SpotCheckError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    visit = conn.execute(text(
        """SELECT v.id, v.seq, v.draw_id, v.item_codes, d.result_json, d.plan_id, d.period,
                  d.seq AS draw_seq, t.credit_code, t.kind, t.name, t.legal_representative,
                  t.address
           FROM spot_check_visit v JOIN spot_check_draw d ON d.id = v.draw_id
           JOIN inspection_target t ON t.id = v.target_id WHERE v.id = :v"""),
        {"v": visit_id}).mappings().first()
    if visit is None:
        raise SpotCheckError(f"there is no visit {visit_id}")
    if item_code not in visit["item_codes"]:
        raise SpotCheckError(f"visit {visit_id} does not check item {item_code}")
    newer = conn.execute(text(
        "SELECT 1 FROM spot_check_draw WHERE plan_id = :p AND period = :period AND seq > :s"),
        {"p": visit["plan_id"], "period": visit["period"], "s": visit["draw_seq"]}).first()
    if newer is not None:
        raise SpotCheckError(f"visit {visit_id} belongs to a draw that was drawn again")
    assigned = json.loads(visit["result_json"])["visits"][visit["seq"] - 1]["assignments"]
    _check_team(assigned.get(item_code, []), inspectors, recorded_by, item_code)
    item = conn.execute(text(
        """SELECT i.id, i.name, d.name AS department FROM inspection_item i
           JOIN department d ON d.id = i.department_id WHERE i.code = :c"""),
        {"c": item_code}).one()
    ids = dict(conn.execute(text("SELECT code, id FROM inspector WHERE code = ANY(:c)"),
                            {"c": [*inspectors, recorded_by]}).all())
    previous = conn.execute(text(
        """SELECT max(id) FROM spot_check_result WHERE visit_id = :v AND item_id = :i"""),
        {"v": visit_id, "i": item.id}).scalar()
    result_id = conn.execute(text(
        """INSERT INTO spot_check_result (visit_id, item_id, outcome, findings, inspected_on,
               inspector_ids, recorded_by_id, published, supersedes_id)
           VALUES (:v, :i, :o, :f, :on, :insp, :by, :pub, :prev) RETURNING id"""),
        {"v": visit_id, "i": item.id, "o": outcome, "f": findings, "on": inspected_on,
         "insp": [ids[c] for c in inspectors], "by": ids[recorded_by], "pub": published,
         "prev": previous}).scalar_one()
    upsert_record(conn, RecordIn(
        record_id=f"SC-{visit_id}-{item_code}", subject_kind=visit["kind"],
        subject_id=visit["credit_code"], subject_name=visit["name"], kind="inspection",
        occurred_on=inspected_on, subject_legal_representative=visit["legal_representative"],
        subject_address=visit["address"] or None, title=f"{item.name}：{OUTCOME_LABELS[outcome]}",
        department=item.department, outcome=outcome), inspection_result_id=result_id)
    return result_id


def _check_team(assigned: list[str], inspectors: list[str], recorded_by: str,
                item_code: str) -> None:
    if not assigned:
        raise SpotCheckError(f"item {item_code} of this visit is understaffed: nobody may "
                             "record a result until it is drawn again")
    if len(set(inspectors)) < DEFAULT_MIN_INSPECTORS:
        raise SpotCheckError("at least two inspectors inspect")
    strangers = sorted(set(inspectors) - set(assigned))
    if strangers:
        raise SpotCheckError(f"{', '.join(strangers)} not drawn for item {item_code} of this "
                             "visit")
    if recorded_by not in inspectors:
        raise SpotCheckError("the recorder is one of the inspectors")


# -- publication ---------------------------------------------------------------------------------
def _public_inspector(row: dict) -> dict:
    """Inspectors act in office: name and certificate shown; ID number and phone masked."""
    return {"name": row["name"], "certificate": row["certificate"],
            "id_number": mask_id_number(row["id_number"]), "phone": mask_phone(row["phone"])}


def _inspector_rows(conn: Connection) -> dict[int, dict]:
    return {r["id"]: dict(r) for r in conn.execute(text(
        "SELECT id, code, name, certificate, id_number, phone FROM inspector")).mappings()}


def public_draw(conn: Connection, draw_id: int) -> dict:
    """What is published of a draw: seed, hashes, strata and visits (personal data masked)."""
    d = conn.execute(text(
        """SELECT d.*, p.name AS plan, p.title FROM spot_check_draw d
           JOIN spot_check_plan p ON p.id = d.plan_id WHERE d.id = :id"""),
        {"id": draw_id}).mappings().first()
    if d is None:
        raise SpotCheckError(f"there is no draw {draw_id}")
    people = _inspector_rows(conn)
    visits = conn.execute(text(
        """SELECT v.seq, v.item_codes, v.inspector_ids, v.status, v.note, t.name, t.kind,
                  t.credit_code, t.grid_code
           FROM spot_check_visit v JOIN inspection_target t ON t.id = v.target_id
           WHERE v.draw_id = :d ORDER BY v.seq"""), {"d": draw_id}).mappings()
    return {
        "draw_id": d["id"], "plan": d["plan"], "title": d["title"], "period": d["period"],
        "seq": d["seq"], "reason": d["reason"], "seed": d["seed"], "algorithm": d["algorithm"],
        "inputs_sha256": d["inputs_sha256"], "result_sha256": d["result_sha256"],
        "drawn_at": d["drawn_at"].isoformat(),
        "strata": json.loads(d["result_json"])["strata"],
        "visits": [{"seq": v["seq"], "target": v["name"],
                    "credit_code": mask_identifier(v["kind"], v["credit_code"]),
                    "grid_code": v["grid_code"], "items": list(v["item_codes"]),
                    "status": v["status"], "note": v["note"],
                    "inspectors": [_public_inspector(people[i]) for i in v["inspector_ids"]]}
                   for v in visits]}


def public_results(conn: Connection, *, plan: str | None = None,
                   period: str | None = None) -> list[dict]:
    """The published results (latest per visit and item): who inspected, who recorded, what
    was found. Personal data masked: inspectors' ID numbers and phones, persons' names."""
    people = _inspector_rows(conn)
    rows = conn.execute(text(
        """
        SELECT p.name AS plan, d.period, d.id AS draw_id, v.id AS visit_id, t.name AS target,
               t.kind, t.credit_code, t.legal_representative, t.address, t.grid_code,
               i.code AS item_code, i.name AS item_name, dep.name AS department, r.outcome,
               r.findings, r.inspected_on, r.inspector_ids, r.recorded_by_id, r.recorded_at
        FROM spot_check_result r
        JOIN spot_check_visit v ON v.id = r.visit_id
        JOIN spot_check_draw d ON d.id = v.draw_id
        JOIN spot_check_plan p ON p.id = d.plan_id
        JOIN inspection_target t ON t.id = v.target_id
        JOIN inspection_item i ON i.id = r.item_id
        JOIN department dep ON dep.id = i.department_id
        WHERE r.published
          AND NOT EXISTS (SELECT 1 FROM spot_check_result n WHERE n.supersedes_id = r.id)
          AND (CAST(:plan AS text) IS NULL OR p.name = :plan)
          AND (CAST(:period AS text) IS NULL OR d.period = :period)
        ORDER BY d.period, p.name, v.seq, i.code
        """), {"plan": plan, "period": period}).mappings()
    return [{
        "plan": r["plan"], "period": r["period"], "draw_id": r["draw_id"],
        "visit_id": r["visit_id"], "target": r["target"],
        "credit_code": mask_identifier(r["kind"], r["credit_code"]),
        "legal_representative": mask_person_name(r["legal_representative"]),
        "address": r["address"], "grid_code": r["grid_code"], "item_code": r["item_code"],
        "item": r["item_name"], "department": r["department"], "outcome": r["outcome"],
        "outcome_label": OUTCOME_LABELS[r["outcome"]], "findings": r["findings"],
        "inspected_on": r["inspected_on"].isoformat(),
        "inspectors": [_public_inspector(people[i]) for i in r["inspector_ids"]],
        "recorded_by": people[r["recorded_by_id"]]["name"],
    } for r in rows]


def list_draws(conn: Connection, plan: str | None = None) -> list[dict]:
    """Every draw (redraws included, none hidden), newest first."""
    return [dict(r) for r in conn.execute(text(
        """SELECT d.id, p.name AS plan, d.period, d.seq, d.reason, d.seed, d.inputs_sha256,
                  d.result_sha256, d.drawn_by, d.drawn_at,
                  (SELECT count(*) FROM spot_check_visit v WHERE v.draw_id = d.id) AS visits
           FROM spot_check_draw d JOIN spot_check_plan p ON p.id = d.plan_id
           WHERE CAST(:plan AS text) IS NULL OR p.name = :plan
           ORDER BY d.id DESC"""), {"plan": plan}).mappings()]
