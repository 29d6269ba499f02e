"""The answer to a request that failed inside the registry (HTTP 500).

No traceback or setting reaches the user: a page (or, for the API and FHIR,
a JSON problem) with the request's correlation id, the same id the log line
with the traceback carries (see :mod:`registry3d.lib.request_id`). It renders
without the database, which may be what failed.
"""

import json

from django.http import HttpResponse, HttpResponseServerError
from django.template import loader

from registry3d.lib.request_id import current


def server_error(request, *args, **kwargs):
    request_id = getattr(request, "request_id", None) or current.get()
    if request.path.startswith(("/api/", "/redcap/api/")):
        body = {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": f"The registry could not finish this request; error id {request_id}.",
            "errors": [],
            "request_id": request_id,
        }
        return HttpResponse(json.dumps(body), status=500, content_type="application/problem+json")
    if request.path.startswith("/fhir/"):
        body = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "fatal",
                    "code": "exception",
                    "diagnostics": f"The registry could not finish this request; "
                    f"error id {request_id}.",
                }
            ],
        }
        return HttpResponse(json.dumps(body), status=500, content_type="application/fhir+json")
    html = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponseServerError(html)
