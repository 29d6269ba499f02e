"""3D model files a site keeps: stored once by content hash, with what was measured.

A site that turns on *keep measured 3D model files* (its settings page)
has every STL, OBJ, PLY or 3MF file its software measures through the API
kept, up to ``REGISTRY3D_MODEL_FILE_MAX_BYTES``; a site that does not has
them measured and forgotten. The same content is stored once, under a
random name; the name it was uploaded under is shown to the site alone, and
only when it does not look like an identifier.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from typing_extensions import TypedDict

from registry3d.audit.services import record
from registry3d.intake import names
from registry3d.intake.mesh import Measurement
from registry3d.intake.models import ModelFile


class Kept(TypedDict):
    code: str
    sha256: str
    bytes: int


def folder(site) -> Path:
    return Path(settings.VAR_DIR) / "models" / site.code


def path_of(model_file: ModelFile) -> Path:
    return folder(model_file.site) / model_file.storage_name


def download_name(model_file: ModelFile) -> str:
    """The name a download is saved under: the file's code, never its upload name."""
    return f"{model_file.code}.{model_file.format}"


def keep(
    site,
    stream: BinaryIO,
    measurement: Measurement,
    *,
    actor=None,
    request: HttpRequest | None = None,
) -> tuple[Kept | None, str]:
    """Keep a measured file if the site keeps them; return what was kept and why not.

    Steps:
    1. Nothing when the site does not keep files, or the file is over the limit.
    2. Hash it while copying it beside its final place; the same content
       already kept is not copied again.
    3. Rename it to a random name, then record the row and the audit event.
       The upload's name is kept on the row only if the screen let it
       through (``measurement`` says so in ``withheld``); the audit event
       records the code, hash and size, never a name.
    """
    if not site.keep_model_files:
        return None, ""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    limit = settings.REGISTRY3D_MODEL_FILE_MAX_BYTES
    if size > limit:
        return None, (
            f"Not kept: the file is {size:,} bytes, over the {limit:,} bytes a kept file may be"
        )
    target_folder = folder(site)
    target_folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=target_folder, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        sha256 = digest.hexdigest()
        existing = ModelFile.objects.filter(site=site, sha256=sha256).first()
        if existing is not None:
            return {"code": str(existing.code), "sha256": sha256, "bytes": existing.size}, ""
        storage_name = names.random_name(f".{measurement['format']}")
        final = target_folder / storage_name
        os.replace(temporary, final)
        temporary = final  # removed below unless the row is recorded
        try:
            kept = _record(site, sha256, storage_name, size, measurement, actor, request)
        except IntegrityError:  # the same file, kept by another request meanwhile
            kept = ModelFile.objects.get(site=site, sha256=sha256)
        else:
            temporary = None
        return {"code": str(kept.code), "sha256": sha256, "bytes": size}, ""
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _record(site, sha256, storage_name, size, measurement, actor, request) -> ModelFile:
    """Save the row and its audit event in one transaction."""
    name_withheld = any(w.startswith("file_name:") for w in measurement.get("withheld", []))
    measured = {k: v for k, v in measurement.items() if k not in ("file_name", "withheld")}
    with transaction.atomic():
        kept = ModelFile.objects.create(
            site=site,
            sha256=sha256,
            storage_name=storage_name,
            file_name="" if name_withheld else measurement["file_name"][:255],
            format=measurement["format"],
            size=size,
            measurement=measured,
            created_by=actor,
        )
        record(
            "model_file.kept",
            actor=actor,
            request=request,
            site=site,
            target=kept,
            changes={"code": str(kept.code), "sha256": sha256, "bytes": size},
        )
    return kept


def get_for_site(site, code) -> ModelFile:
    """The site's kept file ``code``; another site's, or none, is a 404."""
    try:
        found = ModelFile.objects.select_related("site").filter(site=site, code=code).first()
    except ValidationError:  # not a UUID: no file has that code
        found = None
    if found is None:
        raise Http404("No such model file")
    return found
