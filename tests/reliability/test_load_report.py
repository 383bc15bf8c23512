"""``bench/load_report.py`` end to end at a tiny size: it runs, stores every accepted report
exactly once, prints its JSON line and leaves no scratch database behind. (Correctness only;
the figures are in docs/RELIABILITY.md.)"""

from __future__ import annotations

import json
import os

import psycopg
import pytest

from bench import load_report

pytestmark = pytest.mark.slow


def test_a_short_load_stores_every_report_exactly_once(database_factory, capsys):
    code = load_report.main(["--workers", "3", "--duration", "3", "--retry-share", "0.3"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    check = result["check"]
    assert check["exactly_once"] and check["lost"] == check["duplicated"] == 0
    assert check["keys_accepted"] > 0 and check["keys_retried"] > 0
    assert result["figures"]["all"]["errors"] == 0
    assert set(result["figures"]) == {"report", "lookup", "map", "all"}
    with psycopg.connect(load_report._admin_conninfo(database_factory.server_url)) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"gridgov_loadrep_{os.getpid()}%",)).fetchall()
    assert left == []
