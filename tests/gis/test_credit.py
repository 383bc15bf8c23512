"""Credit: identifiers, masking, the exchange format, list rules, levels, import and queries."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import text

from gis.credit import (
    Event,
    Facts,
    add_years,
    derive_entries,
    derive_level,
    find_subjects,
    id_check_char,
    mask_id_number,
    mask_identifier,
    mask_person_name,
    mask_phone,
    refresh,
    subject_profile,
    uscc_check_char,
    valid_id_number,
    valid_uscc,
)
from gis.credit_exchange import RecordError, export_records, import_records, parse_record

ENTERPRISE = "91320213MA1X0000" + "0"
ENTERPRISE += uscc_check_char(ENTERPRISE)
PERSON = "11010519491231002X"  # the example of GB 11643-1999


# -- identifiers and masking ---------------------------------------------------------------------
def test_check_characters():
    assert valid_id_number(PERSON) and id_check_char(PERSON[:17]) == "X"
    assert not valid_id_number("110105194912310021")
    assert valid_uscc(ENTERPRISE)
    for n in range(17):  # any single substitution is caught
        wrong = "1" if ENTERPRISE[n] != "1" else "2"
        assert not valid_uscc(ENTERPRISE[:n] + wrong + ENTERPRISE[n + 1:])
    assert not valid_uscc(ENTERPRISE[:-1] + "I")


def test_masking():
    assert mask_id_number(PERSON) == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "861****5678"
    assert mask_person_name("张三丰") == "张*" and mask_person_name("李四") == "李*"
    assert mask_person_name("欧阳娜娜") == "欧阳*"
    assert mask_identifier("person", PERSON) == "110105********002X"
    assert mask_identifier("enterprise", ENTERPRISE) == ENTERPRISE
    assert mask_id_number(None) is None and mask_phone("") == ""


# -- the exchange format -------------------------------------------------------------------------
def record(**fields) -> dict:
    base = {"record_id": "R1", "subject_kind": "enterprise", "subject_id": ENTERPRISE,
            "subject_name": "测试有限公司", "kind": "penalty", "occurred_on": "2019-03-01"}
    return {**base, **fields}


@pytest.mark.parametrize(("fields", "field"), [
    ({"colour": "red"}, "colour"),
    ({"kind": "fine"}, "kind"),
    ({"subject_id": "91320213MA1X00000X"}, "subject_id"),
    ({"subject_kind": "person", "subject_id": "110105194912310021"}, "subject_id"),
    ({"occurred_on": "2019-02-30"}, "occurred_on"),
    ({"kind": "annual_report"}, "year"),
    ({"kind": "annual_report", "year": 2019}, "occurred_on"),
    ({"kind": "inspection"}, "outcome"),
    ({"kind": "licence", "serious": True}, "serious"),
    ({"amount": "ten"}, "amount"),
    ({"amount": -5}, "amount"),
    ({"record_id": ""}, "record_id"),
    ({"source": "nation"}, "source"),
])
def test_bad_records_name_their_field(fields, field):
    with pytest.raises(RecordError) as caught:
        parse_record(record(**fields))
    assert caught.value.field == field


def test_a_good_record_round_trips():
    parsed = parse_record(record(amount=1500, serious=True, power_item_code="CF-1",
                                 subject_id=ENTERPRISE.lower()))
    assert parsed.subject_id == ENTERPRISE and str(parsed.amount) == "1500.00"
    again = parse_record({k: v for k, v in parsed.to_exchange().items() if v is not None})
    assert again == parsed


# -- list rules ----------------------------------------------------------------------------------
def reports(*pairs: tuple[int, str]) -> tuple[Event, ...]:
    return tuple(Event(date.fromisoformat(on), "annual_report", f"AR{y}", year=y)
                 for y, on in pairs)


def test_a_missing_annual_report_lists_on_1_july_and_filing_removes():
    facts = Facts("enterprise", date(2016, 5, 1), reports((2016, "2017-03-01"),
                                                          (2017, "2018-09-15")))
    assert derive_entries(facts, date(2018, 6, 30)) == []
    (entry,) = derive_entries(facts, date(2018, 7, 1))
    assert (entry.list_name, entry.reason_code, entry.entered_on, entry.removed_on) == (
        "abnormal", "no_annual_report", date(2018, 7, 1), None)
    (entry,) = derive_entries(facts, date(2018, 12, 31))
    assert entry.removed_on == date(2018, 9, 15) and entry.removal_reason
    assert [e.rule_key for e in derive_entries(facts, date(2019, 7, 1))] == [
        "no_annual_report:2017", "no_annual_report:2018"]


def test_persons_and_social_organisations_file_no_annual_reports():
    for kind in ("person", "social_organisation"):
        assert derive_entries(Facts(kind, date(2010, 1, 1), ()), date(2019, 7, 1)) == []


def test_unreachable_lists_until_contact_is_restored():
    events = (Event(date(2018, 3, 1), "inspection", "I1", outcome="not_found"),
              Event(date(2018, 4, 1), "inspection", "I2", outcome="not_found"),
              Event(date(2018, 6, 1), "address_verified", "V1"))
    facts = Facts("individual_business", None, events)
    (entry,) = derive_entries(facts, date(2018, 5, 1))
    assert (entry.reason_code, entry.entered_on, entry.removed_on) == (
        "unreachable", date(2018, 3, 1), None)
    (entry,) = derive_entries(facts, date(2018, 7, 1))
    assert entry.removed_on == date(2018, 6, 1)


def test_three_years_on_the_abnormal_list_blacklists_until_corrected():
    facts = Facts("enterprise", date(2014, 1, 1),
                  reports((2014, "2015-02-01"), (2015, "2019-10-08")))
    on = date(2019, 7, 1)
    black = [e for e in derive_entries(facts, on) if e.list_name == "blacklist"]
    assert [(e.reason_code, e.entered_on, e.removed_on) for e in black] == [
        ("abnormal_3y", date(2019, 7, 1), None)]
    later = [e for e in derive_entries(facts, date(2020, 1, 1)) if e.list_name == "blacklist"]
    assert later[0].removed_on == date(2019, 10, 8)
    quick = Facts("enterprise", date(2014, 1, 1),
                  reports((2014, "2015-02-01"), (2015, "2019-06-30")))
    assert not [e for e in derive_entries(quick, on) if e.list_name == "blacklist"]


def test_serious_and_repeated_penalties_blacklist_for_five_years():
    serious = Facts("enterprise", None, (Event(date(2016, 2, 29), "penalty", "P1",
                                               serious=True),))
    (entry,) = derive_entries(serious, date(2020, 1, 1))
    assert (entry.reason_code, entry.entered_on, entry.removed_on) == (
        "serious_penalty", date(2016, 2, 29), None)
    (entry,) = derive_entries(serious, date(2021, 3, 1))
    assert entry.removed_on == add_years(date(2016, 2, 29), 5) == date(2021, 2, 28)
    penalties = tuple(Event(date.fromisoformat(d), "penalty", f"P{n}") for n, d in
                      enumerate(["2017-01-10", "2017-09-01", "2018-12-20", "2019-06-01"]))
    (entry,) = derive_entries(Facts("enterprise", None, penalties), date(2019, 7, 1))
    assert (entry.reason_code, entry.entered_on) == ("repeat_penalties", date(2018, 12, 20))
    spread = tuple(Event(date.fromisoformat(d), "penalty", f"P{n}") for n, d in
                   enumerate(["2015-01-10", "2016-09-01", "2018-12-20"]))
    assert derive_entries(Facts("enterprise", None, spread), date(2019, 7, 1)) == []


def level(facts: Facts, on: date) -> str:
    return derive_level(facts, derive_entries(facts, on), on)[0]


def test_credit_levels():
    on = date(2019, 7, 1)
    good = reports((2016, "2017-03-01"), (2017, "2018-03-01"), (2018, "2019-03-01"))
    assert level(Facts("enterprise", date(2016, 1, 1), good), on) == "A"
    assert level(Facts("enterprise", date(2018, 1, 1), good[-1:]), on) == "B"  # too new
    fined = (*good, Event(date(2018, 1, 1), "penalty", "P1"))
    assert level(Facts("enterprise", date(2016, 1, 1), fined), on) == "C"
    assert level(Facts("enterprise", date(2016, 1, 1), fined), date(2020, 6, 30)) == "B"
    serious = (*good, Event(date(2018, 1, 1), "penalty", "P1", serious=True))
    assert level(Facts("enterprise", date(2016, 1, 1), serious), on) == "D"
    assert level(Facts("enterprise", date(2016, 1, 1), good[:2]), on) == "C"  # 2018 missing
    checked = (Event(date(2018, 5, 1), "inspection", "I1", outcome="compliant"),)
    assert level(Facts("social_organisation", None, checked), on) == "A"
    assert level(Facts("person", None, ()), on) == "B"


# -- import, export, refresh, query --------------------------------------------------------------
def lines(*records: dict) -> list[tuple[int, str]]:
    return [(n, json.dumps(r, ensure_ascii=False)) for n, r in enumerate(records, start=1)]


def test_import_is_idempotent_and_keeps_rejects(fresh_engine):
    good = [record(record_id=f"R{n}", occurred_on=f"2018-0{n}-01") for n in range(1, 4)]
    person = record(record_id="R9", subject_kind="person", subject_id=PERSON,
                    subject_name="张三丰", kind="penalty")
    bad = [record(record_id="B1", kind="fine"),
           record(record_id="B2", subject_kind="person", subject_id=ENTERPRISE)]
    with fresh_engine.begin() as conn:
        first = import_records(conn, [*lines(*good, person, *bad), (7, "{oops")], file="f",
                               checksum="c", source="city")
    assert (first.inserted, first.updated, first.unchanged) == (4, 0, 0)
    assert [(r["line"], r["field"]) for r in first.rejects] == [
        (5, "kind"), (6, "subject_id"), (7, "record")]
    with fresh_engine.begin() as conn:
        again = import_records(conn, lines(*good, person), file="f", checksum="c",
                               source="city")
        changed = import_records(conn, lines(record(record_id="R1", title="更正",
                                                    occurred_on="2018-01-01"),
                                             record(record_id="R5",
                                                    subject_kind="individual_business")),
                                 file="g", checksum="d", source="province")
        kept = conn.execute(text("SELECT line, field FROM credit_import_reject "
                                 "ORDER BY import_id, line")).all()
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert (changed.updated, changed.rejected) == (1, 1)
    assert changed.rejects[0]["field"] == "subject_kind"  # registered as an enterprise
    assert [tuple(k) for k in kept][:3] == [(5, "kind"), (6, "subject_id"), (7, "record")]


def test_export_round_trips_and_filters_by_source(fresh_engine):
    records = [record(record_id="R1", amount="120.5"),
               record(record_id="R2", kind="annual_report", year=2018,
                      occurred_on="2019-04-01", subject_established_on="2015-06-01"),
               record(record_id="R3", kind="inspection", outcome="rectify", source="local")]
    with fresh_engine.begin() as conn:
        import_records(conn, lines(*records), file="f", checksum="c", source="city")
        exported = list(export_records(conn))
        local = list(export_records(conn, sources=("local",)))
        future = list(export_records(conn, since=date(2100, 1, 1)))
    assert [r["record_id"] for r in exported] == ["R1", "R2", "R3"]
    assert exported[0]["amount"] == "120.50" and exported[0]["source"] == "city"
    assert exported[1]["subject_established_on"] == "2015-06-01"
    assert [r["record_id"] for r in local] == ["R3"] and future == []
    with fresh_engine.begin() as conn:
        back = import_records(conn, lines(*exported), file="e", checksum="x", source="city")
    assert back.unchanged == 3


def test_refresh_writes_lists_and_levels_and_profiles_mask_persons(fresh_engine):
    person = dict(subject_kind="person", subject_id=PERSON, subject_name="张三丰")
    rows = [record(record_id="P1", serious=True, **person),
            record(record_id="L1", kind="licence", occurred_on="2015-01-01",
                   subject_established_on="2015-01-01"),
            record(record_id="A1", kind="annual_report", year=2016, occurred_on="2017-03-01")]
    with fresh_engine.begin() as conn:
        import_records(conn, lines(*rows), file="f", checksum="c", source="city")
        summary = refresh(conn, date(2019, 7, 1))
        again = refresh(conn, date(2019, 7, 1))
        person_id, = find_subjects(conn, PERSON)
        company_id, = find_subjects(conn, "测试")
        profile = subject_profile(conn, person_id, on=date(2019, 7, 1))
        company = subject_profile(conn, company_id, on=date(2019, 7, 1))
    assert summary.entered == 5 and (again.entered, again.changed) == (0, 0)
    assert profile["identifier"] == "110105********002X" and profile["name"] == "张*"
    assert profile["level"] == "D" and profile["lists"][0]["active"]
    assert PERSON not in json.dumps(profile) and "张三丰" not in json.dumps(profile,
                                                                          ensure_ascii=False)
    assert company["level"] == "D"  # on the abnormal list since 2016 for the 2015 report
    assert [(e["reason_code"], e["entered_on"], e["active"]) for e in company["lists"]] == [
        ("no_annual_report", "2016-07-01", True), ("no_annual_report", "2018-07-01", True),
        ("no_annual_report", "2019-07-01", True), ("abnormal_3y", "2019-07-01", True)]


def test_a_removed_record_lifts_the_entry_it_supported(fresh_engine):
    with fresh_engine.begin() as conn:
        import_records(conn, lines(record(record_id="P1", serious=True)), file="f",
                       checksum="c", source="city")
        refresh(conn, date(2019, 7, 1))
        import_records(conn, lines(record(record_id="P1", serious=False)), file="f",
                       checksum="d", source="city")
        refresh(conn, date(2019, 8, 1))
        entry = conn.execute(text("SELECT removed_on, removal_reason FROM credit_list_entry")
                             ).one()
    assert entry.removed_on == date(2019, 8, 1) and "no longer" in entry.removal_reason
