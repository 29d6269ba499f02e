"""Pages of the audit trail: a site's for its managers, all for admins, the
admins' accounting of disclosures, and redaction."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from registry3d.audit import disclosures as disclosure_list
from registry3d.audit.forms import RedactionForm
from registry3d.audit.models import AuditEvent
from registry3d.cases.errors import CaseError
from registry3d.cases.models import Case
from registry3d.cases.redaction import redact_case
from registry3d.sites.models import SiteRole
from registry3d.sites.services import get_site_for_user

PAGE_SIZE = 50


def _page(request, events):
    return Paginator(events.select_related("actor", "site"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )


@login_required
def site_audit(request, code):
    site = get_site_for_user(request.user, code, SiteRole.MANAGER)
    page = _page(request, AuditEvent.objects.filter(site=site))
    return render(request, "audit/trail.html", {"site": site, "page": page, "is_manager": True})


@login_required
def registry_audit(request):
    if not request.user.is_registry_admin:
        raise PermissionDenied("Only registry administrators see the whole trail")
    events = AuditEvent.objects.all()
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = _page(request, events)
    return render(request, "audit/trail.html", {"site": None, "page": page, "action": action})


@login_required
def disclosures(request):
    """Who read or exported which cases, and when: registry admins only (404 for others)."""
    if not request.user.is_registry_admin:
        raise Http404("No such page")
    filters = disclosure_list.Filters.from_query(request.GET)
    page = Paginator(disclosure_list.events(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/disclosures.html",
        {
            "page": page,
            "rows": disclosure_list.rows(list(page)),
            "filters": filters,
            "query": query.urlencode(),
        },
    )


@login_required
def case_redact(request):
    """Remove a text value from a case and its history: registry administrators only.

    Everybody else, analysts and site managers included, gets a 404: the
    page does not exist for them.
    """
    if not request.user.is_registry_admin:
        raise Http404("No such page")
    if request.method != "POST":
        initial = {"site": request.GET.get("site", ""), "case_uid": request.GET.get("case", "")}
        return render(request, "audit/redact.html", {"form": RedactionForm(initial=initial)})
    form = RedactionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        case = Case.objects.filter(site__code=data["site"], case_uid=data["case_uid"]).first()
        if case is None:
            form.add_error("case_uid", f"{data['site']} has no case {data['case_uid']}")
        else:
            try:
                done = redact_case(
                    case, data["element"], data["reason"], actor=request.user, request=request
                )
            except CaseError as exc:
                form.add_error("element", str(exc))
            else:
                versions = ", ".join(str(v) for v in done.versions) or "none"
                messages.success(
                    request,
                    f"Redacted {done.element} in {case.site.code}/{case.case_uid} "
                    f"(versions {versions}).",
                )
                return redirect(reverse("case_redact"))
    return render(request, "audit/redact.html", {"form": form}, status=400)
