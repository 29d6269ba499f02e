"""How many statements one case submission costs the database.

The API's write rate on PostgreSQL is bound by round trips between the web
worker and the database (see bench/README.md), so a change that adds one to
every case submission shows here, not only in the benchmark.
"""

import json

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases.models import Case, CaseVersion
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from tests.cases.conftest import a_case, printers_for


def test_a_case_submission_is_three_statements_on_postgresql(world):
    limiter.clear()
    labels = printers_for(world.site_a)
    _, raw = services.create_token(world.site_a, world.alice, name="W", scope="write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"case_uid": "RT-1", "status": "submitted", "data": a_case(7, labels)}
    client.post("/api/v1/cases", json.dumps(body), content_type="application/json")
    body["case_uid"] = "RT-2"
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/cases", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    # The test runs inside a transaction, so the service guards its statement
    # with a savepoint; outside one (as in production) there is none.
    statements = [
        q["sql"].split()[0].upper()
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    if connection.vendor == "postgresql":
        # The token with its site, member and printers; the token's write
        # allowance (its rate-limit row, shared by every server process);
        # then the case, its version and its audit event together.
        assert statements == ["SELECT", "UPDATE", "WITH"]
    else:
        # SQLite cannot hash: the audit head is read and moved by Python.
        assert len(statements) <= 8, statements
    case = Case.objects.get(case_uid="RT-2")
    assert CaseVersion.objects.get(case=case).data == case.data
    assert AuditEvent.objects.filter(action="case.submitted", object_id="RT-2").count() == 1
    assert verify_chain().ok
