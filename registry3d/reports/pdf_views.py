"""The site's quarterly feedback report as a PDF download from its dashboard."""

import re

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

from registry3d.reports import national, snapshot
from registry3d.reports.metrics import Filters
from registry3d.reports.pdf import site_pdf
from registry3d.sites import services

QUARTER = re.compile(r"\d{4}Q[1-4]")


@login_required
def site_report_pdf(request, code):
    """``?start=2025Q4&end=2026Q3`` (and optionally organ_system, object_type, technology).

    Site viewers and above and registry staff; another site's user gets 404.
    """
    site = services.get_site_for_user(request.user, code, case_level=False)
    df = snapshot.load()
    start = request.GET.get("start", "").strip().upper()
    end = request.GET.get("end", "").strip().upper()
    if not start and not end:
        filters = Filters.default(df)
    else:
        start, end = start or end, end or start
        if not (QUARTER.fullmatch(start) and QUARTER.fullmatch(end)) or start > end:
            return HttpResponse(
                "start and end must be quarters such as 2026Q3, start not after end",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        filters = Filters(start, end)
    for name in ("organ_system", "object_type", "technology"):
        setattr(filters, name, request.GET.get(name, "").strip()[:64])
    response = HttpResponse(site_pdf(site, filters, df), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="registry3d-{site.code}-{national.period_label(filters)}.pdf"'
    )
    return response
