"""Intake endpoints: what an uploaded file can fill in on a case. Nothing is stored."""

from typing import Literal

from ninja import File, Form, Router
from ninja.files import UploadedFile

from registry3d.api.common import Problem, problem, require_write
from registry3d.intake.dicom import DicomError, DicomSummary, read_dicom
from registry3d.intake.mesh import Measurement, MeshError, measure

router = Router(tags=["intake"])


@router.post(
    "/intake/dicom",
    response={200: DicomSummary, 401: Problem, 403: Problem, 422: Problem},
)
def intake_dicom(request, file: File[UploadedFile]):
    """Read the headers of a DICOM file or a ZIP of a series (write token).

    Each series comes back with its imaging details, the study year and
    ``suggested_imaging_item`` for the case's imaging group. Patient, staff
    and institution details and UIDs never appear; nothing is stored.
    """
    require_write(request)
    try:
        return read_dicom(file, name=file.name or "upload")
    except DicomError as exc:
        return problem(
            request,
            422,
            "Unprocessable Content",
            str(exc),
            [{"field": "file", "code": "bad_format", "message": str(exc)}],
        )


@router.post(
    "/intake/mesh",
    response={200: Measurement, 401: Problem, 403: Problem, 422: Problem},
)
def intake_mesh(
    request,
    file: File[UploadedFile],
    object_type: Form[Literal["anatomic_model", "anatomic_guide"]] = "anatomic_model",
):
    """Measure an STL, OBJ, PLY or 3MF file (write token); nothing is stored.

    Returns triangles, volume (cm³), surface area (cm²), bounding box (mm),
    watertight or not and separate bodies, and ``suggestions``: components,
    material volume and ``cpt_lines`` before the unit limits per date of
    service. STL, OBJ and PLY carry no unit, so millimetres are assumed.
    """
    require_write(request)
    try:
        return measure(file, file.name or "upload", object_type=object_type)
    except MeshError as exc:
        return problem(
            request,
            422,
            "Unprocessable Content",
            str(exc),
            [{"field": "file", "code": "bad_format", "message": str(exc)}],
        )
