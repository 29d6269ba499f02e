"""Export pages: research exports for registry staff, a site's own export for its managers.

Analysts make and see de-identified (Safe Harbor) research exports only; an
identifiable export (a limited data set) is listed and downloaded by
registry administrators alone, and answers anyone else 404.
"""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render

from registry3d.dictionary import registry
from registry3d.exports import services
from registry3d.exports.errors import ExportRefused, InvalidOptions
from registry3d.exports.forms import ResearchExportForm, SiteExportForm
from registry3d.exports.models import Export, ExportKind
from registry3d.sites.models import Site


@login_required
def research_exports(request):
    """Ask for a research export; list the registry's research exports."""
    if not request.user.is_registry_staff:
        if request.method == "POST":
            services.note_refusal(
                request.user, request, services.NOT_STAFF, kind=ExportKind.RESEARCH
            )
        raise Http404("No such page")
    dictionary = registry.current().dictionary
    form = ResearchExportForm(request.POST or None, dictionary=dictionary, sites=Site.objects.all())
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            options = services.ResearchOptions(
                elements=data["elements"] or None,
                from_year=data["from_year"],
                to_year=data["to_year"],
                organ_system=data["organ_system"],
                object_type=data["object_type"],
                sites=data["sites"],
                free_text=data["free_text"],
                site_labels=data["site_labels"],
                months=data["months"],
                identifiers=data["identifiers"],
            )
            try:
                export = services.request_research_export(
                    request.user, options, data["format"], request=request
                )
            except ExportRefused as exc:
                form.add_error(None, str(exc))
                status = 403
            except InvalidOptions as exc:
                for problem in exc.problems:
                    form.add_error(None, problem)
            else:
                return redirect("export_detail", code=export.code)
    exports = services.research_exports_for(request.user).select_related("requested_by")[:50]
    return render(
        request,
        "exports/research.html",
        {
            "form": form,
            "exports": exports,
            "identifiable_fields": ResearchExportForm.IDENTIFIABLE,
        },
        status=status,
    )


@login_required
def site_export(request, code):
    """A site manager exports the site's own cases; lists the site's exports."""
    site = services.site_for_export(request.user, code, request)
    form = SiteExportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            export = services.request_site_export(
                request.user, site, form.cleaned_data["format"], request=request
            )
            return redirect("export_detail", code=export.code)
    exports = Export.objects.filter(kind=ExportKind.SITE, site=site).select_related("requested_by")[
        :50
    ]
    return render(
        request,
        "exports/site_export.html",
        {"site": site, "is_manager": True, "form": form, "exports": exports},
        status=status,
    )


@login_required
def export_detail(request, code):
    """An export's progress (htmx polls while it runs), manifest and download."""
    export = services.get_export_for_user(request.user, code)
    context = {
        "export": export,
        "site": export.site,
        "is_manager": export.site is not None,
    }
    if request.htmx:
        return render(request, "exports/_export_status.html", context)
    return render(request, "exports/export_detail.html", context)


@login_required
def export_download(request, code):
    """The export's ZIP: its data files, dictionary.csv and manifest.json."""
    export = services.get_export_for_user(request.user, code)
    if export.status != "done" or not export.file_path:
        raise Http404("This export is not ready")
    try:
        handle = open(export.file_path, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        raise Http404("This export's file is gone; ask for it again") from None
    services.note_download(request.user, export, request)
    return FileResponse(handle, as_attachment=True, filename=export.download_name)
