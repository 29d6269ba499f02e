"""Case pages: list, form (new and edit) with inline checks, detail with history, withdraw."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from registry3d.cases import services
from registry3d.cases.errors import CaseExists, InvalidCase, NotAllowed, StaleVersion
from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import derive, forms, registry
from registry3d.dictionary.validation import Problem
from registry3d.lib.pseudonym import patient_key
from registry3d.questionnaires import services as questionnaires
from registry3d.questionnaires.models import Specialty
from registry3d.sites.middleware import remember_site
from registry3d.sites.models import SiteRole
from registry3d.sites.services import get_site_for_user, membership_for

PAGE_SIZE = 50


def _can_write(user, site) -> bool:
    if user.is_registry_admin:
        return True
    membership = membership_for(user, site)
    return membership is not None and membership.allows(SiteRole.CONTRIBUTOR)


def _site_context(request, site) -> dict:
    membership = membership_for(request.user, site)
    return {
        "site": site,
        "is_manager": request.user.is_registry_admin
        or (membership is not None and membership.allows(SiteRole.MANAGER)),
        "can_write": _can_write(request.user, site),
    }


@login_required
def case_list(request, code):
    """The site's cases, filtered and searched, 50 to a page."""
    site = get_site_for_user(request.user, code)
    remember_site(request, site)
    dictionary = registry.current().dictionary
    cases = Case.objects.filter(site=site).select_related("updated_by")
    filters = {
        "status": request.GET.get("status", ""),
        "year": request.GET.get("year", ""),
        "organ_system": request.GET.get("organ_system", ""),
        "object_type": request.GET.get("object_type", ""),
        "q": request.GET.get("q", "").strip()[:64],
    }
    if filters["status"] in CaseStatus.values:
        cases = cases.filter(status=filters["status"])
    if filters["year"].isdigit() and len(filters["year"]) == 4:
        cases = cases.filter(case_month__startswith=filters["year"] + "-")
    if filters["organ_system"]:
        cases = cases.filter(organ_system=filters["organ_system"])
    if filters["object_type"]:
        cases = cases.filter(object_type=filters["object_type"])
    if filters["q"]:
        cases = cases.filter(case_uid__icontains=filters["q"])
    page = Paginator(cases.order_by("-updated_at", "-id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    services.note_staff_read(request.user, site, [c.case_uid for c in page], request, listed=True)
    years = sorted(
        {m[:4] for m in Case.objects.filter(site=site).values_list("case_month", flat=True) if m},
        reverse=True,
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **_site_context(request, site),
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "years": years,
        "statuses": CaseStatus.choices,
        "organ_systems": _choices(dictionary, "organ_system"),
        "object_types": _choices(dictionary, "object_type"),
        "labels": {
            "organ_system": dict(_choices(dictionary, "organ_system")),
            "object_type": dict(_choices(dictionary, "object_type")),
            "technology": dict(_choices(dictionary, "print_technology")),
        },
    }
    template = "cases/_case_table.html" if request.htmx else "cases/case_list.html"
    return render(request, template, context)


def _choices(dictionary, value_set: str) -> list[tuple[str, str]]:
    vs = dictionary.value_sets.get(value_set)
    return [(c.code, c.label) for c in vs.codes if c.active] if vs else []


def _form_page(request, site, case, row, problems, record, status=200, stale=None):
    dictionary = registry.current().dictionary
    sections = forms.build(
        dictionary, row, problems, sections=[s.id for s in dictionary.case_sections()]
    )
    errors = [p for p in problems if p.severity == "error"]
    return render(
        request,
        "cases/case_form.html",
        {
            **_site_context(request, site),
            "case": case,
            "sections": sections,
            "record": record,
            "errors": [(p, forms.problem_field(p.path)) for p in errors],
            "warnings": [
                (p, forms.problem_field(p.path)) for p in problems if p.severity == "warning"
            ],
            "stale": stale,
            "dictionary": dictionary,
        },
        status=status,
    )


def _record_from(request, site, case) -> tuple[dict, list[Problem]]:
    """The record fields of a form post; a typed MRN becomes the patient key at once."""
    record = {
        "case_uid": case.case_uid if case else request.POST.get("case_uid", "").strip(),
        "patient_key": request.POST.get("patient_key", "").strip(),
        "version": request.POST.get("version", ""),
    }
    problems = []
    mrn = request.POST.get("mrn", "")
    if mrn.strip():
        try:
            record["patient_key"] = patient_key(site.code, mrn)
        except ValueError:
            problems.append(Problem("mrn", "required", "Medical record number: it is empty"))
    return record, problems


@login_required
def case_edit(request, code, case_uid=None):
    """New case or edit: the dictionary's form, saved as a draft or submitted."""
    site = get_site_for_user(request.user, code, SiteRole.CONTRIBUTOR)
    case = (
        services.get_case_for_user(request.user, code, case_uid, write=True, request=request)
        if case_uid
        else None
    )
    dictionary = registry.current().dictionary
    if request.method != "POST":
        row = forms.row_of(dictionary, case.data) if case else {}
        record = {
            "case_uid": case.case_uid if case else "",
            "patient_key": case.patient_key if case else "",
            "version": case.version if case else "",
        }
        return _form_page(request, site, case, row, [], record)
    row, data, problems = forms.read_post(dictionary, request.POST)
    record, record_problems = _record_from(request, site, case)
    problems = record_problems + problems
    status = CaseStatus.SUBMITTED if request.POST.get("action") == "submit" else CaseStatus.DRAFT
    if case is not None and case.status == CaseStatus.SUBMITTED:
        status = CaseStatus.SUBMITTED
    if problems:
        return _form_page(request, site, case, row, problems, record, status=400)
    expected = int(record["version"]) if str(record["version"]).isdigit() else None
    try:
        result = services.save_case(
            site,
            case_uid=record["case_uid"],
            data=data,
            status=status,
            patient_key=record["patient_key"] or None,
            actor=request.user,
            request=request,
            expected_version=expected if case else None,
            create_only=case is None,
            must_exist=case is not None,
        )
    except InvalidCase as exc:
        return _form_page(request, site, case, row, exc.problems, record, status=400)
    except StaleVersion as exc:
        merged, conflicts = _merge(dictionary, exc, row)
        record["version"] = exc.case.version
        return _form_page(
            request,
            site,
            case,
            merged,
            [],
            record,
            status=409,
            stale={"case": exc.case, "changes": exc.changes, "conflicts": conflicts},
        )
    except (CaseExists, NotAllowed) as exc:
        path = "case_uid" if isinstance(exc, CaseExists) else ""
        return _form_page(
            request, site, case, row, [Problem(path, "refused", str(exc))], record, status=409
        )
    saved = result.case
    if not result.changed:
        messages.info(request, "Nothing had changed; the case was not saved again.")
    elif saved.status == CaseStatus.SUBMITTED:
        messages.success(request, f"Case {saved.case_uid} is submitted (version {saved.version}).")
    else:
        messages.success(request, f"Draft {saved.case_uid} saved (version {saved.version}).")
    for warning in result.warnings:
        messages.warning(request, f"Please check {warning.path}: {warning.message}")
    return redirect(saved)


def _merge(dictionary, exc: StaleVersion, mine: dict) -> tuple[dict, list[str]]:
    """Merge the user's edits into the case as it is now (a three-way merge).

    Fields the user did not touch take the other person's values; fields
    the user changed keep the user's. Returns the merged form row and the
    fields both changed differently, which the page asks the user to check.
    """
    from registry3d.cases.models import CaseVersion

    then = CaseVersion.objects.filter(case=exc.case, version=exc.expected).first()
    base = forms.row_of(dictionary, then.data if then else {})
    theirs = forms.row_of(dictionary, exc.case.data)
    merged, conflicts = {}, []
    for key in set(base) | set(theirs) | set(mine):
        if key in ("case_uid", "patient_key", "version", "mrn", "action"):
            continue
        b, t, m = base.get(key, ""), theirs.get(key, ""), mine.get(key, "")
        if m == b:
            merged[key] = t
        else:
            merged[key] = m
            if t != b and t != m:
                conflicts.append(key)
    return {k: v for k, v in merged.items() if v != ""}, sorted(conflicts)


@login_required
@require_POST
def case_check(request, code):
    """Check the form as the user types: each field's problems, swapped in place."""
    site = get_site_for_user(request.user, code, SiteRole.CONTRIBUTOR)
    dictionary = registry.current().dictionary
    row, data, problems = forms.read_post(dictionary, request.POST)
    problems = problems + services.validate(site, services.normalise(data), CaseStatus.DRAFT)
    sections = forms.build(
        dictionary, row, problems, sections=[s.id for s in dictionary.case_sections()]
    )
    return render(request, "cases/_field_errors_oob.html", {"sections": sections})


@login_required
def case_detail(request, code, case_uid):
    """A case's values, derived values and its full change history."""
    case = services.get_case_for_user(request.user, code, case_uid, request=request)
    site = case.site
    remember_site(request, site)
    dictionary = registry.current().dictionary
    history = list(case.versions.select_related("changed_by").order_by("-version"))
    questionnaire = questionnaires.for_case(case)
    response = getattr(questionnaire, "response", None) if questionnaire else None
    return render(
        request,
        "cases/case_detail.html",
        {
            **_site_context(request, site),
            "case": case,
            "sections": _shown_values(dictionary, case.data),
            "derived": [
                (d, derive.FUNCTIONS[d.function](dictionary, case.data, d.args))
                for d in dictionary.derived
            ],
            "history": history,
            "questionnaire": questionnaire,
            "questionnaire_problem": ""
            if response is None or response.case_version
            else "see the audit trail",
            "specialties": Specialty.choices,
        },
    )


def _display(element, value) -> str:
    if value is None or value == "" or value == []:
        return ""
    if element.value_set is not None:
        if isinstance(value, list):
            return ", ".join(element.value_set.label_of(v) for v in value)
        return element.value_set.label_of(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if element.type == "duration" and isinstance(value, int):
        return f"{value // 60} h {value % 60:02d} min" if value >= 60 else f"{value} min"
    unit = f" {element.unit}" if element.unit and element.unit not in ("a", "[USD]") else ""
    prefix = "$" if element.unit == "[USD]" else ""
    return f"{prefix}{value}{unit}"


def _shown_values(dictionary, data: dict) -> list:
    sections = []
    for section in dictionary.sections:
        rows = []
        for element in section.elements:
            value = data.get(element.name)
            if element.is_group:
                for number, item in enumerate(value or [], start=1):
                    items = [
                        (i.label, _display(i, item.get(i.name)))
                        for i in element.elements
                        if _display(i, item.get(i.name))
                    ]
                    rows.append((f"{element.label} {number}", items, True))
            elif _display(element, value):
                rows.append((element.label, _display(element, value), False))
        if rows:
            sections.append((section, rows))
    return sections


@login_required
@require_POST
def case_withdraw(request, code, case_uid):
    case = services.get_case_for_user(request.user, code, case_uid, write=True)
    expected = request.POST.get("version", "")
    try:
        services.withdraw_case(
            case,
            request.POST.get("reason", ""),
            actor=request.user,
            request=request,
            expected_version=int(expected) if expected.isdigit() else None,
        )
    except (InvalidCase, NotAllowed, StaleVersion) as exc:
        message = exc.problems[0].message if isinstance(exc, InvalidCase) else str(exc)
        messages.error(request, message)
    else:
        messages.success(request, f"Case {case.case_uid} was withdrawn.")
    return redirect(reverse("case_detail", args=[case.site.code, case.case_uid]))
