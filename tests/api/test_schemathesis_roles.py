"""schemathesis against the live API as each kind of caller, and through its links.

``test_schemathesis.py`` fuzzes every operation with a write token. Here the
same operations are called:

- without a token: every operation (but the health check) is refused with a
  documented 401 problem carrying ``WWW-Authenticate``, never a 2xx, never
  a 5xx;
- with a read token: reads answer as documented, every write is refused
  with 403 (or stopped earlier, as any caller's would be, by the body
  limits: 400 or 413), and nothing is written;
- statefully with a write token: schemathesis follows the OpenAPI links
  (a created case to its read, replace, patch, withdraw, FHIR Bundle and
  questionnaire; an import to its job), so later requests use identifiers
  that earlier answers gave; no answer may be a server error or differ
  from the schema, and a created case must then be readable.
"""

import pytest
import schemathesis
from schemathesis import GenerationMode

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case, CaseVersion
from registry3d.intake.models import Import, ModelFile
from registry3d.lib.middleware import NUL_MESSAGE
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from registry3d.sites.models import Printer
from tests.conftest import bounded, make_world

ANONYMOUS_EXAMPLES = 10
READ_EXAMPLES = 10
STATEFUL_SCENARIOS = 12
STATEFUL_STEPS = 6

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Refusals of the body limits, which come before the token is looked at.
BEFORE_AUTH = {400, 413}

CONFORMANCE = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def clear_limits():
    """Each test starts with a full write allowance."""
    limiter.clear()


def written() -> dict:
    return {
        "cases": Case.objects.count(),
        "versions": CaseVersion.objects.count(),
        "imports": Import.objects.count(),
        "model_files": ModelFile.objects.count(),
        "printers": Printer.objects.count(),
        "audit": AuditEvent.objects.exclude(action__startswith="token.").count(),
    }


@pytest.fixture
def roles_world(transactional_db, live_server):
    world = make_world()
    services.add_printer(
        world.site_a,
        label="J750-1",
        manufacturer="Stratasys",
        model="J750 Digital Anatomy",
        technology="material_jetting",
    )
    _, world.read_token = services.create_token(
        world.site_a, world.bob, name="reader", scope="read"
    )
    _, world.write_token = services.create_token(
        world.site_a, world.alice, name="writer", scope="write"
    )
    clear_limits()
    return world


def _schema(live_server, token: str | None):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    schema.config.update(base_url=live_server.url, headers=headers, request_timeout=20)
    return schema


@pytest.fixture
def anonymous_schema(live_server, roles_world):
    return _schema(live_server, None)


READ_TOKEN = [""]  # the current test's read token, for the check below


@pytest.fixture
def read_schema(live_server, roles_world):
    READ_TOKEN[0] = roles_world.read_token
    return _schema(live_server, roles_world.read_token)


anonymous = schemathesis.pytest.from_fixture("anonymous_schema")
reader = schemathesis.pytest.from_fixture("read_schema")


def refused_without_token(ctx, response, case):
    """No token: 401 with WWW-Authenticate and a problem body, nothing else."""
    status = response.status_code
    if status == 405 or (case.method.upper() in WRITES and status in BEFORE_AUTH):
        return None  # a method the operation does not have; the body limits
    if status == 400 and NUL_MESSAGE in response.text:
        return None  # a NUL character in the address is refused before anything else
    if status != 401:
        raise AssertionError(f"{case.method} {case.path} without a token answered {status}")
    if "Bearer" not in response.headers.get("www-authenticate", [""])[0]:
        raise AssertionError("401 without 'WWW-Authenticate: Bearer'")
    if not response.headers.get("content-type", [""])[0].startswith("application/problem+json"):
        raise AssertionError("401 is not application/problem+json")
    return None


def writes_refused_for_readers(ctx, response, case):
    """A read token's write gets 403 (or an earlier body-limit refusal), never more."""
    status = response.status_code
    if status == 405:
        return None  # a method the operation does not have
    if status == 400 and NUL_MESSAGE in response.text:
        return None  # a NUL character in the address is refused before anything else
    sent = response.request.headers.get("Authorization", "")
    if sent != f"Bearer {READ_TOKEN[0]}":
        # schemathesis also tries the operation without (or with a broken) token.
        if status != 401:
            raise AssertionError(f"{case.path} with Authorization {sent!r} answered {status}")
        return None
    if case.method.upper() not in WRITES:
        if status in (401, 403):
            raise AssertionError(f"a read token may read, but {case.path} answered {status}")
        return None
    if status == 403 or status in BEFORE_AUTH:
        return None
    raise AssertionError(f"{case.method} {case.path} with a read token answered {status}")


@anonymous.exclude(path="/api/health").parametrize()
@bounded(ANONYMOUS_EXAMPLES)
def test_without_a_token_every_operation_is_refused(case, roles_world):
    case.call_and_validate(checks=[*CONFORMANCE, refused_without_token])


@reader.parametrize()
@bounded(READ_EXAMPLES)
def test_a_read_token_reads_and_may_not_write(case, roles_world):
    before = written()
    case.call_and_validate(checks=[*CONFORMANCE, writes_refused_for_readers])
    assert written() == before, f"{case.method} {case.path} with a read token wrote something"


def test_the_schema_links_created_cases_and_imports_to_their_next_steps(live_server, roles_world):
    raw = _schema(live_server, roles_world.write_token).raw_schema
    paths = raw["paths"]
    links = {
        (path, method, status): sorted(response.get("links", {}))
        for path, item in paths.items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if response.get("links")
    }
    case_links = [
        "GetCase",
        "GetCaseBundle",
        "GetQuestionnaire",
        "PatchCase",
        "ReplaceCase",
        "WithdrawCase",
    ]
    assert links == {
        ("/api/v1/cases", "post", "201"): case_links,
        ("/api/v1/cases/{case_uid}", "put", "200"): case_links,
        ("/api/v1/cases/{case_uid}", "put", "201"): case_links,
        ("/api/v1/cases/{case_uid}", "patch", "200"): case_links,
        ("/api/v1/imports", "post", "202"): ["GetImport"],
    }
    operation_ids = {
        operation["operationId"] for item in paths.values() for operation in item.values()
    }
    for (path, method, status), _names in links.items():
        for link in paths[path][method]["responses"][status]["links"].values():
            assert link["operationId"] in operation_ids, link


def test_stateful_walks_through_the_links_get_only_documented_answers(live_server, roles_world):
    schema = _schema(live_server, roles_world.write_token)
    # Valid requests only (as the schema allows them), with codec and characters a
    # case ID can hold, so that walks get past the first step; the negative
    # requests are the other tests' business.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE], codec="ascii", allow_x00=False)
    token = roles_world.write_token
    machine = schema.as_state_machine()
    seen = {"created": 0, "linked": 0}

    class Walk(machine):
        def setup(self):
            clear_limits()

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            if case.method.upper() == "POST" and case.path == "/api/v1/cases":
                seen["created"] += response.status_code == 201
            elif "{case_uid}" in case.path and response.status_code < 300:
                seen["linked"] += 1
            case.validate_response(
                response,
                checks=[*CONFORMANCE, schemathesis.checks.ensure_resource_availability],
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs or None,
            )

    Walk.run(settings=bounded(STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS))
    # The walk got somewhere: cases were created and their links followed.
    assert seen["created"] and seen["linked"], seen
