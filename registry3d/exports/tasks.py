"""Background job of exports: takes an id, is safe to run twice, records its progress."""

from django_tasks import task


@task()
def run_export(export_id: int) -> str:
    """Write an export's files outside the web request."""
    from registry3d.exports import services
    from registry3d.exports.models import Export

    export = Export.objects.select_related("site", "requested_by").get(pk=export_id)
    try:
        services.run_export(export)
    except Exception:
        # Recorded on the export's row for its page to show; the worker logs it.
        export.refresh_from_db()
        raise
    return export.status
