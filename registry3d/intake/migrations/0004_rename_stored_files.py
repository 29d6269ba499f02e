"""Rename kept model files and uploaded import files to random names.

Before this, a kept model file was stored as ``<sha256>.<format>`` and an
uploaded import file under a name ending in its upload name, and both
upload names were kept whatever they held. For each row:

1. Screen the upload name: one that looks like an identifier is replaced
   (none for a model file, ``upload.<ext>`` for an import).
2. Give the file on disk a random name: a hard link (or a copy) is made
   under the new name inside the migration's transaction, and the old name
   is removed only once the transaction has committed, so a failed
   migration leaves every old name in place.
3. Drop the upload name from a model file's stored measurement.

Run it with the server stopped: a process still running the old code looks
for the old names and answers downloads with "The file is gone".
"""

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.db import migrations, transaction

from registry3d.intake import names


def _link(old: Path, new: Path) -> bool:
    """Give ``old`` a second name ``new``; False when ``old`` is not there."""
    if not old.is_file():
        return False
    try:
        os.link(old, new)
    except OSError:  # a file system without hard links
        shutil.copy2(old, new)
    transaction.on_commit(lambda: old.unlink(missing_ok=True))
    return True


def forwards(apps, schema_editor):
    ModelFile = apps.get_model("intake", "ModelFile")
    Import = apps.get_model("intake", "Import")
    var = Path(settings.VAR_DIR)
    for kept in ModelFile.objects.select_related("site").iterator():
        kept.storage_name = names.random_name(f".{kept.format}")
        folder = var / "models" / kept.site.code
        _link(folder / f"{kept.sha256}.{kept.format}", folder / kept.storage_name)
        if names.find_identifier_in_file_name(kept.file_name):
            kept.file_name = ""
        kept.measurement.pop("file_name", None)
        kept.save(update_fields=["storage_name", "file_name", "measurement"])
    for batch in Import.objects.iterator():
        if names.find_identifier_in_file_name(batch.file_name):
            batch.file_name = names.neutral_name("upload", batch.file_name)
        if batch.file_path:
            old = Path(batch.file_path)
            new = old.with_name("upload-" + names.random_name(names.suffix_of(old.name)))
            if _link(old, new):
                batch.file_path = str(new)
        batch.save(update_fields=["file_name", "file_path"])


def backwards(apps, schema_editor):
    """Give kept model files back the content-hash names the old code reads."""
    ModelFile = apps.get_model("intake", "ModelFile")
    var = Path(settings.VAR_DIR)
    for kept in ModelFile.objects.select_related("site").exclude(storage_name=None).iterator():
        folder = var / "models" / kept.site.code
        _link(folder / kept.storage_name, folder / f"{kept.sha256}.{kept.format}")


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0003_model_file_storage_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
