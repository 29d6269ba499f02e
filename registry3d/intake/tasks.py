"""Background jobs of imports: each takes ids, is safe to run twice, and records progress."""

from django_tasks import task


@task()
def check_import(import_id: int, write: bool = False, user_id: int | None = None) -> str:
    """Check an uploaded file (and write it, when asked) outside the web request."""
    from django.contrib.auth import get_user_model

    from registry3d.intake import services
    from registry3d.intake.models import Import, ImportStatus

    batch = Import.objects.select_related("site").get(pk=import_id)
    if batch.status in (ImportStatus.DONE, ImportStatus.REFUSED):
        return batch.status
    actor = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        services.run_import(batch, preview=not write, progress=_heartbeat(batch), actor=actor)
    except services.ImportError_:
        pass  # recorded on the import row for the page to show
    return batch.status


@task()
def write_import(import_id: int, user_id: int | None = None) -> str:
    """Write a checked import's valid rows."""
    from django.contrib.auth import get_user_model

    from registry3d.intake import services
    from registry3d.intake.models import Import, ImportStatus

    batch = Import.objects.select_related("site").get(pk=import_id)
    if batch.status != ImportStatus.CHECKED:
        return batch.status
    actor = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    services.write_import(batch, _heartbeat(batch), actor=actor)
    return batch.status


def _heartbeat(batch):
    from registry3d.intake.models import Import

    def progress(rows: int) -> None:
        Import.objects.filter(pk=batch.pk).update(rows_done=rows)

    return progress
