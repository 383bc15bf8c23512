"""Fuzz the REST API from its own OpenAPI document (schemathesis, in process through WSGI).

Every operation of ``/api/openapi.json`` gets ``MAX_EXAMPLES`` generated requests — valid ones
and deliberately invalid ones (wrong types, missing fields, strings where numbers go, odd
characters) — once with an admin's bearer token and once with a viewer's, on the small test
world of ``tests.webmap.test_api_cases``. Each answer must not be a 5xx, must use a status and
media type the document lists for the operation, and must match its schema. Hypothesis is
derandomised, so a run is repeatable; a failure prints the request that reproduces it.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from tests.webmap.test_api_cases import ApiWorld, build_world  # noqa: E402
from webmap.openapi import document  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30
#: What must hold for every answer (schemathesis' built-in checks).
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


@pytest.fixture(scope="module")
def fuzz_world(database_factory, template_name, tmp_path_factory) -> ApiWorld:
    url = database_factory.create("fuzz", template=template_name)
    yield build_world(url, tmp_path_factory.mktemp("uploads"))
    database_factory.drop(url)


def _checks() -> list:
    from schemathesis import checks

    return [getattr(checks, name) for name in CHECKS]


FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None,
                         deadline=None, suppress_health_check=list(HealthCheck),
                         phases=[Phase.explicit, Phase.generate, Phase.shrink])


def _fuzz_operation(operation, mode, headers: dict[str, str]) -> str | None:
    """Run one operation's examples; the failure (shrunk to its smallest request) or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=_checks())

    try:
        run()
    except Unsatisfiable:  # negative mode, no parameters or body: nothing to get wrong
        return None
    except Exception as exc:  # collected: every operation is tried before the test fails
        return f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}"
    return None


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("username", ["admin", "viewer"])
def test_every_operation_survives_generated_requests(fuzz_world, username, mode):
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_world.app)
    headers = {"Authorization": f"Bearer {fuzz_world.tokens[username]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {f"{method.upper()} {path}" for path, item in document()["paths"].items()
                  for method in item} - {"GET /api/openapi.json"}  # not fuzzed: the document
    assert {operation.label for operation in operations} == documented
    failures = [failure for operation in operations
                if (failure := _fuzz_operation(operation, GenerationMode(mode), headers))]
    assert not failures, "\n\n".join(failures)
