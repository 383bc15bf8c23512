"""Reports from the field: incident + case in one step, idempotent retries, grid scope."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis.accounts import create_user, load_user
from gis.reporting import submit_report
from gis.workflow import NotAllowed
from tests.casekit import FRIDAY
from tests.factories import lattice


@pytest.fixture
def people(world):
    engine, workflow, _ = world
    with engine.begin() as conn:
        staff = conn.execute(text("INSERT INTO staff (code, name, post) VALUES "
                                  "('W1', '网格员', 'grid_worker') RETURNING id")).scalar()
        conn.execute(text("INSERT INTO staff_grid VALUES (:s, '320213001001001', 'worker')"),
                     {"s": staff})
        worker = load_user(conn, create_user(conn, "w1", "correct horse 42", "grid_worker",
                                             staff_id=staff))
        acceptor = load_user(conn, create_user(conn, "a1", "correct horse 42", "acceptor"))
    return engine, workflow, worker, acceptor


def _submit(engine, workflow, user, cell=(0, 3), **kwargs):
    x, y = lattice(*cell)
    values = {"source": "grid_worker", "class_code": "E0102", "x": x + 0.001, "y": y + 0.001,
              "crs": "wgs84", "reported_at": FRIDAY}
    values.update(kwargs)
    with engine.begin() as conn:
        return submit_report(conn, workflow, user, **values)


def test_report_opens_a_case_with_photos_in_the_trail(people):
    engine, workflow, worker, _ = people
    result = _submit(engine, workflow, worker, description="垃圾堆放",
                     photos=[{"photo_id": 7}], idempotency_key="k-1")
    assert result.incident.grid_code == "320213001001001" and result.case.state == "reported"
    with engine.connect() as conn:
        event = conn.execute(text("SELECT actor_role, note, photos FROM case_event")).one()
    assert event == ("grid_worker", "垃圾堆放", [{"photo_id": 7}])


def test_a_retry_with_the_same_key_returns_the_first_report(people):
    engine, workflow, worker, _ = people
    first = _submit(engine, workflow, worker, idempotency_key="k-2")
    again = _submit(engine, workflow, worker, idempotency_key="k-2")
    assert again.replayed and again.incident.id == first.incident.id
    assert again.case.id == first.case.id
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_file")).scalar() == 1


def test_same_key_from_another_user_is_another_report(people):
    engine, workflow, worker, acceptor = people
    first = _submit(engine, workflow, worker, idempotency_key="k-3")
    other = _submit(engine, workflow, acceptor, source="hotline", idempotency_key="k-3")
    assert other.incident.id != first.incident.id
    assert [c.case_id for c in other.possible_duplicates] == [first.case.id]


def test_grid_staff_report_only_in_their_grids(people):
    engine, workflow, worker, acceptor = people
    with pytest.raises(NotAllowed, match="320213001001002"):
        _submit(engine, workflow, worker, cell=(1, 3))
    outside = _submit(engine, workflow, acceptor, source="hotline", x=0.5, y=0.5)
    assert outside.incident.location_status == "outside" and outside.case is None
