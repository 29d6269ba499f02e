"""Import pages: upload, preview with live progress, problems download, write."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from registry3d.intake import services, tasks
from registry3d.intake.forms import ImportForm
from registry3d.intake.models import Import, ImportStatus
from registry3d.sites.models import SiteRole
from registry3d.sites.services import get_site_for_user

RUNNING = (ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING)


@login_required
def import_list(request, code):
    """Upload a file; list the site's earlier imports."""
    site = get_site_for_user(request.user, code, SiteRole.CONTRIBUTOR)
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        path = None
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                path, _digest = services.store_readable_upload(
                    site.code, upload.name, upload.chunks()
                )
            except services.ImportError_ as exc:
                form.add_error("file", str(exc))
        if path is not None:
            batch = services.create_import(
                site,
                path,
                actor=request.user,
                mode=form.cleaned_data["mode"],
                default_status=form.cleaned_data["default_status"],
                file_name=upload.name,
            )
            tasks.check_import.enqueue(import_id=batch.pk, write=False, user_id=request.user.pk)
            return redirect("import_detail", code=site.code, import_code=batch.code)
    imports = Import.objects.filter(site=site).select_related("created_by")[:50]
    return render(
        request,
        "intake/import_list.html",
        {"site": site, "form": form, "imports": imports, "can_write": True},
        status=status,
    )


def _import_for(request, code, import_code):
    site = get_site_for_user(request.user, code, SiteRole.CONTRIBUTOR)
    return get_object_or_404(Import.objects.select_related("site"), site=site, code=import_code)


@login_required
def import_detail(request, code, import_code):
    """The preview: counts, first problems, progress while it runs (htmx polls)."""
    batch = _import_for(request, code, import_code)
    context = {
        "site": batch.site,
        "batch": batch,
        "running": batch.status in RUNNING,
        "problems": batch.problems.all()[:20],
        "can_write": True,
    }
    if request.htmx:
        return render(request, "intake/_import_status.html", context)
    return render(request, "intake/import_detail.html", context)


@login_required
@require_POST
def import_write(request, code, import_code):
    """Write a checked import's valid rows, in the background."""
    batch = _import_for(request, code, import_code)
    if batch.status != ImportStatus.CHECKED:
        messages.error(request, "This import is not waiting to be written.")
    else:
        tasks.write_import.enqueue(import_id=batch.pk, user_id=request.user.pk)
    return redirect("import_detail", code=batch.site.code, import_code=batch.code)


@login_required
def import_problems(request, code, import_code):
    """Every problem of an import as CSV: row, case_uid, element, code, message."""
    batch = _import_for(request, code, import_code)
    response = StreamingHttpResponse(
        services.problems_csv(batch), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="problems-{batch.code}.csv"'
    return response
