"""Read-only pages of the audit trail: a site's for its managers, all for admins."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

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
