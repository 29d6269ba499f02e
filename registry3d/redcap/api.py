"""``/redcap/api/``: REDCap's API over the registry, for REDCap clients such as PyCap.

Like REDCap's, it is one address taking form-encoded POSTs: ``token`` (a
REDCap token of the registry: 32 hexadecimal characters, acting as one
member of one site), ``content`` (what is asked) and ``format`` (json or
csv). The site is a REDCap project whose records are its cases. Errors come
as REDCap gives them: ``{"error": "..."}`` in JSON, ``ERROR: ...`` in CSV,
``<hash><error>...</error></hash>`` in XML (REDCap's default when no format
is asked), with REDCap's status codes: 403 for a token that does not work,
400 for bad parameters or records, 429 for too many writes.

A token sees only its own site: another site's records are never found, and
a record ID that another site uses is simply a new record of this one.
"""

import csv
import io
import json
import re
from datetime import datetime
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case, CaseVersion
from registry3d.dictionary import registry
from registry3d.dictionary.validation import is_safe_name, shown_name
from registry3d.lib.ratelimit import token_write_wait
from registry3d.lib.withhold import withheld
from registry3d.redcap import services
from registry3d.redcap.errors import ImportRefused
from registry3d.redcap.project import RECORD_ID, project_of
from registry3d.redcap.records import case_rows
from registry3d.sites import services as site_services
from registry3d.sites.models import TokenKind

# The REDCap version whose API this endpoint follows (content=version).
REDCAP_VERSION = "14.0.0"
NO_PERMISSION = "You do not have permissions to use the API"
NO_IMPORT = "You do not have API Import/Update privileges"
LIST_KEY_RE = re.compile(r"^(?P<name>[A-Za-z]+)(\[(?P<index>\d*)\])?$")
LOG_TIME = "%Y-%m-%d %H:%M"


class ApiError(Exception):
    """Raised by a handler to answer with REDCap's error shape."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


def error_response(status: int, message: str, fmt: str, headers: dict | None = None):
    if fmt == "csv":
        response = HttpResponse(f"ERROR: {message}", status=status, content_type="text/csv")
    elif fmt == "xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            f"<hash>\n  <error>{escape(message)}</error>\n</hash>"
        )
        response = HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")
    else:
        response = HttpResponse(
            json.dumps({"error": message}), status=status, content_type="application/json"
        )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def list_param(params, name: str) -> list[str]:
    """A list parameter as clients send it: ``name``, ``name[]`` or ``name[0]``, ``name[1]``…

    Each value may itself be a comma-separated list.
    """
    indexed = []
    for key in params:
        match = LIST_KEY_RE.match(key)
        if not match or match.group("name") != name:
            continue
        index = int(match.group("index")) if match.group("index") else -1
        for value in params.getlist(key):
            indexed.append((index, value))
    values = []
    for _index, value in sorted(indexed, key=lambda pair: pair[0]):
        values += [part.strip() for part in value.split(",") if part.strip()]
    return values


def _format(params) -> str:
    fmt = (params.get("format") or "xml").strip().lower()
    if fmt == "xml":
        raise ApiError(400, "format=xml is not supported by this registry; use json or csv")
    if fmt not in ("json", "csv"):
        raise ApiError(400, 'The value of the parameter "format" is not valid; use json or csv')
    return fmt


def _table(rows: list[dict], columns: list[str], fmt: str) -> HttpResponse:
    if fmt == "json":
        return HttpResponse(json.dumps(rows, ensure_ascii=False), content_type="application/json")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")


def _unknown(values: list[str], known, what: str) -> None:
    bad = [v for v in values if v not in known]
    if bad:
        listed = ", ".join(shown_name(v) for v in bad)
        raise ApiError(
            400, f'The following values in the parameter "{what}" are not valid: {listed}'
        )


def _param(key: str, value) -> str:
    """``key=value`` when the sender's value may be quoted back, else "this key" (#15)."""
    return f"{key}={value}" if is_safe_name(value) else f"this {key}"


def _true(value) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes")


# --- Handlers, one per content ----------------------------------------------------------------


def version(request, token, params):
    return HttpResponse(REDCAP_VERSION, content_type="text/plain; charset=utf-8")


def project_info(request, token, params):
    fmt = _format(params)
    site = token.site
    dictionary = registry.current().dictionary
    info = {
        # REDCap numbers its projects; the registry has one per site and
        # never shows its own integer ids, so every site's project is 1.
        "project_id": 1,
        "project_title": f"{site.code} – {site.name} (registry3d, dictionary {dictionary.version})",
        "creation_time": site.joined_on.strftime("%Y-%m-%d 00:00:00"),
        "production_time": "",
        "in_production": 1,
        "project_language": "English",
        "purpose": 2,
        "purpose_other": "",
        "project_notes": "Cases of the site in the registry3d medical 3D printing registry.",
        "custom_record_label": "",
        "secondary_unique_field": "",
        "is_longitudinal": 0,
        "has_repeating_instruments_or_events": 1,
        "surveys_enabled": 0,
        "scheduling_enabled": 0,
        "record_autonumbering_enabled": 0,
        "randomization_enabled": 0,
        "ddp_enabled": 0,
        "project_irb_number": "",
        "project_grant_number": "",
        "project_pi_firstname": "",
        "project_pi_lastname": "",
        "display_today_now_button": 1,
        "missing_data_codes": "",
        "external_modules": "",
        "bypass_branching_erase_field_prompt": 0,
    }
    if fmt == "json":
        return HttpResponse(json.dumps(info, ensure_ascii=False), content_type="application/json")
    return _table([info], list(info), fmt)


def metadata(request, token, params):
    fmt = _format(params)
    project = project_of(registry.current().dictionary)
    fields, forms = list_param(params, "fields"), list_param(params, "forms")
    _unknown(fields, project.fields, "fields")
    _unknown(forms, project.instrument, "forms")
    rows = [
        row
        for row in project.metadata()
        if (not fields and not forms) or row["field_name"] in fields or row["form_name"] in forms
    ]
    return _table(rows, list(project.metadata()[0]), fmt)


def export_field_names(request, token, params):
    fmt = _format(params)
    project = project_of(registry.current().dictionary)
    rows = project.export_field_names()
    field = (params.get("field") or "").strip()
    if field:
        rows = [r for r in rows if r["original_field_name"] == field]
        if not rows:
            raise ApiError(400, f"The field {shown_name(field)} is not a valid field")
    return _table(rows, ["original_field_name", "choice_value", "export_field_name"], fmt)


def instruments(request, token, params):
    fmt = _format(params)
    project = project_of(registry.current().dictionary)
    rows = [{"instrument_name": i.name, "instrument_label": i.label} for i in project.instruments]
    return _table(rows, ["instrument_name", "instrument_label"], fmt)


def repeating_forms(request, token, params):
    fmt = _format(params)
    project = project_of(registry.current().dictionary)
    rows = [
        {"event_name": "", "form_name": i.name, "custom_form_label": ""}
        for i in project.repeating()
    ]
    return _table(rows, ["event_name", "form_name", "custom_form_label"], fmt)


def form_event_mapping(request, token, params):
    raise ApiError(400, "You cannot export form/event mappings for classic projects")


def next_record_name(request, token, params):
    # Like REDCap's auto-numbering: one more than the largest numeric record name.
    numbers = [
        int(uid)
        for uid in Case.objects.filter(site=token.site).values_list("case_uid", flat=True)
        if uid.isdecimal()
    ]
    return HttpResponse(str(max(numbers, default=0) + 1), content_type="text/plain")


LOG_ACTIONS = {
    "case.created": "Create record",
    "case.submitted": "Update record",
    "case.updated": "Update record",
    "case.withdrawn": "Update record",
}


def _details(event: AuditEvent, version: CaseVersion | None) -> str:
    """The log's details: the status from the event, the values from the case's version.

    The audit trail holds digests of the values, never the values; the
    site's own versions hold them (and, after a redaction, its marker).
    """
    changes = event.changes
    parts = []
    if event.action in ("case.submitted", "case.withdrawn") or "status" in changes:
        status = changes.get("status")
        if isinstance(status, list):
            status = status[-1]
        if status:
            parts.append(f"status = '{status}'")
    elements = registry.current().dictionary.all_elements
    for path, values in (version.changed if version is not None else {}).items():
        if path in ("patient_key", "status"):
            continue  # not part of a REDCap record, and never shown; the status is above
        new = values[-1] if isinstance(values, list) else values
        element = elements.get(re.sub(r"\[[0-9]+\]", "", path))
        if element is None or element.screened:
            new = withheld(
                new, token=element is not None and element.token
            )  # text, or an element of an older dictionary
        shown = "" if new is None else (json.dumps(new) if isinstance(new, list) else str(new))
        parts.append(f"{path} = '{shown}'")
    if event.action == "case.withdrawn" and version is not None and version.note:
        parts.append(f"reason = '{withheld(version.note)}'")
    return ", ".join(parts)


def _versions_of(site, events: list[AuditEvent]) -> dict[tuple[str, int], CaseVersion]:
    """The case versions the events made, by (case ID, version), in one query."""
    uids = {e.object_id for e in events}
    numbers = {e.changes.get("version") for e in events} - {None}
    if not uids or not numbers:
        return {}
    found = CaseVersion.objects.filter(
        site=site, case__site=site, case__case_uid__in=uids, version__in=numbers
    ).select_related("case")
    return {(v.case.case_uid, v.version): v for v in found}


def _moment(key: str, text: str) -> datetime:
    for layout in (LOG_TIME, LOG_TIME + ":%S"):
        try:
            return timezone.make_aware(datetime.strptime(text, layout))
        except ValueError:
            continue
    raise ApiError(400, f"{key} must look like YYYY-MM-DD HH:MM")


def log(request, token, params):
    """The audit trail of the site's cases in REDCap's logging shape."""
    fmt = _format(params)
    events = AuditEvent.objects.filter(
        site=token.site, object_type="case", action__in=list(LOG_ACTIONS)
    ).order_by("-seq")
    record_id = (params.get("record") or "").strip()
    if record_id:
        events = events.filter(object_id=record_id)
    user = (params.get("user") or "").strip()
    if user:
        events = events.filter(actor_label=user)
    for key, lookup in (("beginTime", "at__gte"), ("endTime", "at__lte")):
        text = (params.get(key) or "").strip()
        if text:
            events = events.filter(**{lookup: _moment(key, text)})
    kind = (params.get("logtype") or "record").strip()
    if kind not in ("record", "record_add", "record_edit"):
        # Only changes to records are in this log (no designs, users or locks).
        events = events.none()
    rows = []
    events = list(events[:10000])
    versions = _versions_of(token.site, events)
    for event in events:
        action = LOG_ACTIONS[event.action]
        if event.action == "case.submitted" and event.changes.get("version") == 1:
            action = "Create record"
        if kind == "record_add" and action != "Create record":
            continue
        if kind == "record_edit" and action == "Create record":
            continue
        rows.append(
            {
                "timestamp": timezone.localtime(event.at).strftime(LOG_TIME),
                "username": event.actor_label,
                "action": f"{action} {event.object_id}",
                "details": _details(
                    event, versions.get((event.object_id, event.changes.get("version")))
                ),
            }
        )
    return _table(rows, ["timestamp", "username", "action", "details"], fmt)


def records(request, token, params):
    if (params.get("action") or "").strip():
        raise ApiError(
            400,
            "Only exporting and importing records is supported here; withdraw a case in the "
            "registry instead of deleting it",
        )
    kind = (params.get("type") or "flat").strip().lower()
    if kind != "flat":
        raise ApiError(
            400, f"{_param('type', kind)} is not supported by this registry; use type=flat"
        )
    if "data" in params:
        return import_records(request, token, params)
    return export_records(request, token, params)


UNSUPPORTED_EXPORT = {
    "filterLogic": "filterLogic is not supported by this registry; filter by records",
    "dateRangeBegin": "dateRangeBegin is not supported by this registry",
    "dateRangeEnd": "dateRangeEnd is not supported by this registry",
}


def export_records(request, token, params):
    fmt = _format(params)
    for key, message in UNSUPPORTED_EXPORT.items():
        if (params.get(key) or "").strip():
            raise ApiError(400, message)
    if list_param(params, "events"):
        raise ApiError(400, "This project is not longitudinal; leave out events")
    for key in ("rawOrLabel", "rawOrLabelHeaders"):
        if (params.get(key) or "raw").strip().lower() != "raw":
            raise ApiError(400, f"{_param(key, params.get(key))} is not supported; use raw")
    if (params.get("decimalCharacter") or ".").strip() not in (".", ""):
        raise ApiError(400, "decimalCharacter: numbers are exported with '.'")
    project = project_of(registry.current().dictionary)
    wanted_records = list_param(params, "records")
    fields, forms = list_param(params, "fields"), list_param(params, "forms")
    _unknown(fields, set(project.fields) | set(project.status_fields), "fields")
    _unknown(forms, project.instrument, "forms")
    selected = None
    if fields or forms:
        selected = set(fields) | {RECORD_ID}
        for name in forms:
            instrument = project.instrument[name]
            selected |= {f.name for f in instrument.fields} | {instrument.status_field}
    columns = project.export_columns(selected)
    # Which rows a filtered export holds: instances of the repeating
    # instruments asked for; the record's main row if anything on it is.
    wanted_instruments = {project.column_instrument[c] for c in columns[3:]}
    keep_main = not wanted_instruments or any(
        not project.instrument[name].repeating for name in wanted_instruments
    )
    services.record_export(
        token,
        {
            "format": fmt,
            "records": wanted_records,
            "fields": fields,
            "forms": forms,
        },
        request=request,
    )
    cases = services.site_cases(token.site, wanted_records or None)

    def rows():
        for case in cases.iterator(chunk_size=200):
            for row in case_rows(project, case):
                instrument = row.get("redcap_repeat_instrument", "")
                if instrument and instrument not in wanted_instruments:
                    continue
                if not instrument and not keep_main:
                    continue
                yield {column: row.get(column, "") for column in columns}

    if fmt == "json":

        def body():
            yield "["
            first = True
            for row in rows():
                yield ("" if first else ",") + json.dumps(row, ensure_ascii=False)
                first = False
            yield "]"

        return StreamingHttpResponse(body(), content_type="application/json")

    def csv_body():
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows():
            writer.writerow(row)
            if out.tell() > 65536:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return StreamingHttpResponse(csv_body(), content_type="text/csv; charset=utf-8")


def _parse_data(params) -> list[dict]:
    fmt = _format(params)
    text = params.get("data") or ""
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiError(400, f"data is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ApiError(400, "data must be a JSON array of records")
        return data
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ApiError(400, f"data is not valid CSV: {exc}") from None
    if reader.fieldnames is None:
        raise ApiError(400, "data is empty; send a header row and records")
    if None in (key for row in rows for key in row):
        raise ApiError(400, "data has a row with more cells than the header has columns")
    return rows


def import_records(request, token, params):
    if not site_services.token_can_write(token):
        raise ApiError(403, NO_IMPORT)
    seconds = token_write_wait(token)
    if seconds:
        raise ApiError(
            429,
            f"Too many writes with this token; wait {seconds} s and retry.",
            {"Retry-After": str(seconds)},
        )
    behaviour = (params.get("overwriteBehavior") or "normal").strip().lower()
    if behaviour not in ("normal", "overwrite"):
        raise ApiError(400, "overwriteBehavior must be normal or overwrite")
    returned = (params.get("returnContent") or "count").strip().lower()
    if returned not in ("count", "ids", "auto_ids", "nothing"):
        raise ApiError(400, "returnContent must be count, ids, auto_ids or nothing")
    if _true(params.get("forceAutoNumber")):
        raise ApiError(
            400, "forceAutoNumber is not supported: a record's name is the site's own case ID"
        )
    if (params.get("dateFormat") or "YMD").strip().upper() not in ("YMD", "MDY", "DMY"):
        raise ApiError(400, "dateFormat must be YMD, MDY or DMY")
    rows = _parse_data(params)
    try:
        ids = services.import_records(
            token, rows, overwrite=behaviour == "overwrite", request=request
        )
    except ImportRefused as exc:
        raise ApiError(400, "\n".join(p.line() for p in exc.problems)) from None
    answer_format = (params.get("returnFormat") or "json").strip().lower()
    if returned == "nothing":
        return HttpResponse("", content_type="text/plain")
    if returned in ("ids", "auto_ids"):
        if answer_format == "csv":
            return HttpResponse("id\n" + "".join(f"{i}\n" for i in ids), content_type="text/csv")
        return HttpResponse(json.dumps(ids), content_type="application/json")
    if answer_format == "csv":
        return HttpResponse(str(len(ids)), content_type="text/csv")
    return HttpResponse(json.dumps({"count": len(ids)}), content_type="application/json")


HANDLERS = {
    "version": version,
    "project": project_info,
    "metadata": metadata,
    "exportFieldNames": export_field_names,
    "instrument": instruments,
    "repeatingFormsEvents": repeating_forms,
    "formEventMapping": form_event_mapping,
    "generateNextRecordName": next_record_name,
    "log": log,
    "record": records,
}


@csrf_exempt
def redcap_api(request):
    """Answer one REDCap API request (a form-encoded POST)."""
    if request.method != "POST":
        return error_response(
            405, "The REDCap API takes form-encoded POST requests", "json", {"Allow": "POST"}
        )
    limit = settings.REGISTRY3D_API_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return error_response(
            413,
            f"The request body is {length} bytes; at most {limit} are accepted. Import "
            "fewer records at a time.",
            "json",
        )
    params = request.POST
    answer_format = (params.get("returnFormat") or params.get("format") or "xml").strip().lower()
    if answer_format not in ("json", "csv", "xml"):
        answer_format = "json"
    try:
        token = site_services.authenticate_token(
            (params.get("token") or "").strip(), kind=TokenKind.REDCAP
        )
        if token is None:
            raise ApiError(403, NO_PERMISSION)
        request.auth = token  # the audit trail names the token
        handler = HANDLERS.get((params.get("content") or "").strip())
        if handler is None:
            raise ApiError(400, 'The value of the parameter "content" is not valid')
        return handler(request, token, params)
    except ApiError as exc:
        return error_response(exc.status, exc.message, answer_format, exc.headers)
