"""Intake endpoints: what an uploaded file can fill in on a case.

DICOM files are never stored; 3D model files only when the site keeps them.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.http import FileResponse, Http404
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile

from registry3d.api.common import Problem, bad_file, problem, require_write
from registry3d.intake import model_files
from registry3d.intake.dicom import DicomError, DicomSummary, read_dicom
from registry3d.intake.mesh import Measurement, MeshError, measure
from registry3d.intake.models import ModelFile

router = Router(tags=["intake"])


class MeshAnswer(Measurement):
    kept: model_files.Kept | None


class ModelFileOut(Schema):
    code: UUID
    file_name: str
    format: str
    bytes: int
    sha256: str
    created_at: datetime
    measurement: dict


def _model_file_out(kept: ModelFile) -> dict:
    return {
        "code": kept.code,
        "file_name": kept.shown_name,
        "format": kept.format,
        "bytes": kept.size,
        "sha256": kept.sha256,
        "created_at": kept.created_at,
        "measurement": kept.measurement,
    }


@router.post(
    "/intake/dicom",
    response={200: DicomSummary, 401: Problem, 403: Problem, 422: Problem},
)
def intake_dicom(request, file: File[UploadedFile]):
    """Read the headers of a DICOM file or a ZIP of a series (write token).

    Each series comes back with its imaging details, the study year and
    ``suggested_imaging_item`` for the case's imaging group. Patient, staff
    and institution details and UIDs never appear. A text attribute that
    looks like an identifier is null, with the kind in the series'
    ``withheld``; a file name that does, is not in any message. Nothing is
    stored.
    """
    require_write(request)
    try:
        return read_dicom(file, name=file.name or "upload")
    except DicomError as exc:
        return bad_file(request, str(exc))


@router.post(
    "/intake/mesh",
    response={200: MeshAnswer, 401: Problem, 403: Problem, 422: Problem},
)
def intake_mesh(
    request,
    file: File[UploadedFile],
    object_type: Form[Literal["anatomic_model", "anatomic_guide"]] = "anatomic_model",
):
    """Measure an STL, OBJ, PLY or 3MF file (write token).

    Returns triangles, volume (cm³), surface area (cm²), bounding box (mm),
    watertight or not and separate bodies, and ``suggestions``: components,
    material volume and ``cpt_lines`` before the unit limits per date of
    service. STL, OBJ and PLY carry no unit, so millimetres are assumed.
    The file is stored only when the site keeps its model files: ``kept``
    then names it (its code and SHA-256; the same content is kept once).
    A file name that looks like an identifier is answered as
    ``model.<format>``, with the kind of identifier in ``withheld``.
    """
    token = require_write(request)
    try:
        measured = measure(file, file.name or "upload", object_type=object_type)
    except MeshError as exc:
        return bad_file(request, str(exc))
    kept, why_not = model_files.keep(token.site, file, measured, actor=token.user, request=request)
    if why_not:
        measured["notes"] = [*measured["notes"], why_not]
    return {**measured, "kept": kept}


@router.get("/intake/models", response={200: list[ModelFileOut], 401: Problem})
def list_model_files(request):
    """The 3D model files the site kept (read token), newest first.

    ``file_name`` is the name the file was uploaded under when it does not
    look like an identifier, otherwise ``model-<code>.<format>``.
    """
    kept = ModelFile.objects.filter(site=request.auth.site).select_related("site")[:1000]
    return [_model_file_out(k) for k in kept]


@router.get("/intake/models/{code}", response={200: None, 401: Problem, 404: Problem})
def download_model_file(request, code: str):
    """One kept 3D model file, as it was uploaded (read token), saved as ``<code>.<format>``."""
    try:
        kept = model_files.get_for_site(request.auth.site, code)
        handle = open(model_files.path_of(kept), "rb")  # noqa: SIM115 - FileResponse closes it
    except Http404:  # unknown, another site's, or not a UUID
        return problem(request, 404, "Not Found", "No model file with this code at this site")
    except OSError:
        return problem(request, 404, "Not Found", "The file is gone from the server's storage")
    return FileResponse(handle, as_attachment=True, filename=model_files.download_name(kept))
