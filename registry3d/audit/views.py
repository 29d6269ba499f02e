"""Read-only pages of the audit trail: a site's for its managers, all for admins, and the
admins' accounting of disclosures."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from registry3d.audit import disclosures as disclosure_list
from registry3d.audit.models import AuditEvent
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
