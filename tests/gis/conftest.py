"""Fixtures for the spatial core's database tests."""

from __future__ import annotations

import pytest

from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.deadlines import load_rules
from gis.workflow import Workflow
from tests.factories import small_hierarchy, small_organisation


@pytest.fixture
def world(fresh_engine):
    load_classes(fresh_engine)
    load_rules(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g"))
    with fresh_engine.begin() as conn:
        departments = small_organisation(conn)
        workflow = Workflow.load(conn)
    return fresh_engine, workflow, departments
