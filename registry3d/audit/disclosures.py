"""The accounting of disclosures: who read or exported which cases, and when.

Built from the audit trail, so nothing is recorded twice:

1. The events that disclose case data (:data:`DISCLOSURE_ACTIONS`): reads
   of case pages by registry staff (``case.viewed``, and ``case.listed``
   with the case IDs a list page showed), research and site
   exports asked for and downloaded, and records sent through the REDCap
   API.
2. Filters by site, case, person and period. A case is matched by its own
   reads, by the identifiable exports that held it (their
   :class:`~registry3d.exports.models.ExportCase` rows) and by the exports
   of its site made after it was recorded. De-identified exports hold no
   case IDs and are matched by site and period only.
3. Each page of events is joined to its exports in one query, to say what
   each export was and how many cases it held.
"""

import uuid
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet

from registry3d.audit.models import DISCLOSURE_ACTIONS, AuditEvent

SHOWN_CASES = 20
# Events that send every case of their site (a site's export, REDCap records).
SITE_EXPORTS = ("export.requested", "export.downloaded", "redcap.records_exported")


@dataclass
class Filters:
    site: str = ""
    case: str = ""  # the site's case ID, or the registry's case code
    person: str = ""  # part of an e-mail address
    start: date | None = None
    end: date | None = None

    @classmethod
    def from_query(cls, query) -> "Filters":
        def day(name):
            try:
                return date.fromisoformat(query.get(name, "").strip())
            except ValueError:
                return None

        return cls(
            site=query.get("site", "").strip().upper()[:16],
            case=query.get("case", "").strip()[:64],
            person=query.get("person", "").strip()[:254],
            start=day("start"),
            end=day("end"),
        )


def _cases(filters: Filters):
    from registry3d.cases.models import Case

    try:
        by_code = Q(code=uuid.UUID(filters.case))
    except ValueError:
        by_code = Q(pk__in=[])
    cases = Case.objects.filter(Q(case_uid=filters.case) | by_code)
    if filters.site:
        cases = cases.filter(site__code=filters.site)
    return cases.select_related("site")


def _exports_holding(cases) -> list[str]:
    from registry3d.exports.models import ExportCase

    codes = ExportCase.objects.filter(case__in=cases).values_list("export__code", flat=True)
    return [str(code) for code in codes.distinct()]


def events(filters: Filters) -> QuerySet[AuditEvent]:
    """The disclosure events that match ``filters``, newest first."""
    found = AuditEvent.objects.filter(action__in=DISCLOSURE_ACTIONS)
    if filters.case:
        cases = list(_cases(filters))
        match = Q(object_type="export", object_id__in=_exports_holding([c.pk for c in cases]))
        for case in cases:
            match |= Q(action="case.viewed", site=case.site, object_id=case.case_uid)
            # Case IDs are letters, digits, - and _: quoted, they match exactly.
            match |= Q(
                action="case.listed", site=case.site, changes_json__contains=f'"{case.case_uid}"'
            )
            match |= Q(action__in=SITE_EXPORTS, site=case.site, at__gte=case.created_at)
        found = found.filter(match)
    elif filters.site:
        from registry3d.cases.models import Case

        held = _exports_holding(Case.objects.filter(site__code=filters.site).values("pk"))
        found = found.filter(
            Q(site__code=filters.site) | Q(object_type="export", object_id__in=held)
        )
    if filters.person:
        found = found.filter(actor_label__icontains=filters.person)
    if filters.start:
        found = found.filter(at__date__gte=filters.start)
    if filters.end:
        found = found.filter(at__date__lte=filters.end)
    return found.select_related("site")


@dataclass
class Row:
    event: AuditEvent
    what: str  # the case ID, or the export's title
    cases: int | None  # how many cases an export held
    shown_cases: list[str]  # SITE/CASE of an identifiable export's cases, the first few
    options: dict


def rows(page_events: list[AuditEvent]) -> list[Row]:
    """The page's events with what each disclosed: a case, or an export and its cases."""
    from registry3d.exports.models import Export, ExportCase

    codes = [e.object_id for e in page_events if e.object_type == "export"]
    exports = {
        str(x.code): x for x in Export.objects.filter(code__in=_uuids(codes)).select_related("site")
    }
    held: dict[int, list[str]] = {}
    for export in exports.values():
        if export.identifiable:
            first = (
                ExportCase.objects.filter(export=export)
                .order_by("case__site__code", "case__case_uid")
                .values_list("case__site__code", "case__case_uid")[:SHOWN_CASES]
            )
            held[export.pk] = [f"{site}/{case_uid}" for site, case_uid in first]
    out = []
    for event in page_events:
        export = exports.get(event.object_id) if event.object_type == "export" else None
        if export is not None:
            out.append(
                Row(
                    event,
                    export.title,
                    export.cases_done,
                    held.get(export.pk, []),
                    export.options,
                )
            )
        elif event.action == "case.viewed":
            out.append(Row(event, event.object_id, 1, [], {}))
        elif event.action == "case.listed":
            shown = event.changes.get("cases", [])
            out.append(Row(event, "case list", len(shown), shown[:SHOWN_CASES], {}))
        else:
            out.append(Row(event, "", None, [], event.changes))
    return out


def _uuids(values: list[str]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out
