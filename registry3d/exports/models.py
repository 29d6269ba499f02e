"""Exports of case data: research exports (de-identified or, for admins, identifiable) and a
site's own cases."""

import uuid

from django.conf import settings
from django.db import models


class ExportKind(models.TextChoices):
    RESEARCH = "research", "Research (de-identified)"
    SITE = "site", "Site's own cases"


DEIDENTIFIED_TITLE = "Research (de-identified) export"
IDENTIFIABLE_TITLE = "Identifiable export (limited data set)"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"
    XLSX = "xlsx", "Excel (XLSX)"
    FHIR = "fhir", "FHIR R4B NDJSON"
    REDCAP = "redcap", "REDCap (data dictionary and records)"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Writing"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class Export(models.Model):
    """One export asked for on a page or by the command line, and its files.

    The job writes the files into a folder of their own and packs them with
    their manifest into one ZIP under ``VAR_DIR/exports/``; the row keeps
    the progress, the manifest (row counts and SHA-256 of each file) and
    what went wrong.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=ExportKind.choices)
    # The site whose cases a site export holds; empty for research exports.
    site = models.ForeignKey(
        "sites.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="exports"
    )
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    options = models.JSONField(default=dict)
    # A research export that leaves HIPAA Safe Harbor (months, case IDs and
    # patient keys, or free text): listed and downloadable by admins alone.
    identifiable = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    cases_done = models.PositiveIntegerField(default=0)
    cases_total = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict)
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.kind} export {self.code} ({self.status})"

    @property
    def running(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)

    @property
    def title(self) -> str:
        """What pages, lists and the manifest call the export."""
        if self.kind == ExportKind.SITE:
            return f"Export of {self.site.code}'s own cases"
        return IDENTIFIABLE_TITLE if self.identifiable else DEIDENTIFIED_TITLE

    @property
    def download_name(self) -> str:
        who = self.site.code if self.site_id else "registry"
        kind = "identifiable" if self.identifiable else self.kind
        return f"registry3d-{kind}-{who}-{self.created_at:%Y%m%d-%H%M}.zip"


class ExportCase(models.Model):
    """A case an identifiable export held, so the registry can say who received it.

    Written in bulk as the export is written; a job that runs again writes
    its rows again. De-identified exports have none.
    """

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="held_cases")
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["export", "case"], name="export_case_once")]

    def __str__(self):
        return f"{self.export_id} held {self.case_id}"


class ExportSiteLabel(models.Model):
    """The stable random label that stands for a site in research exports that hide site codes."""

    site = models.OneToOneField("sites.Site", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=16, unique=True)

    def __str__(self):
        return self.label
