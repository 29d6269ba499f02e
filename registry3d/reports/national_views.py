"""The national evidence report for registry analysts and admins: page, CSV and PDF."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render

from registry3d.reports import national, snapshot
from registry3d.reports.metrics import Filters


def _report(request):
    """The report for ``?period=`` (the last four quarters with cases by default)."""
    if not request.user.is_registry_staff:
        raise PermissionDenied("Only registry analysts and administrators see the national report")
    df = snapshot.load()
    period = request.GET.get("period", "").strip()
    filters = national.parse_period(period) if period else Filters.default(df)
    return national.national_report(df, filters)


def _filename(report, ending: str) -> str:
    return f"registry3d-national-{report.period}.{ending}"


@login_required
def national_report(request):
    period = request.GET.get("period", "").strip()
    try:
        report = _report(request)
    except national.PeriodError as exc:
        context = {"report": None, "period": period, "error": str(exc)}
        return render(request, "reports/national.html", context, status=400)
    context = {
        "report": report,
        "period": period or report.period,
        "tables": [(t, t.rows()) for t in report.tables],
    }
    return render(request, "reports/national.html", context)


@login_required
def national_report_csv(request):
    try:
        report = _report(request)
    except national.PeriodError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(national.to_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "csv")}"'
    return response


@login_required
def national_report_pdf(request):
    from registry3d.reports.pdf import national_pdf

    try:
        report = _report(request)
    except national.PeriodError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(national_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "pdf")}"'
    return response
