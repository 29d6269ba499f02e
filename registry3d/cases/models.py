"""Case records: one patient's 3D printing episode at one site, and its history."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse


class CaseStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Case(models.Model):
    """The current version of a case; every earlier version is a CaseVersion.

    The case data live in ``data`` as the dictionary defines them. The few
    values every list and report filters on are copied into indexed columns
    when the case is saved through the service.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own on the site, month or people: the composite indexes
    # below start with the site, and every index costs each bulk-imported
    # row (fourteen of them were a third of the database's work).
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="cases", db_index=False
    )
    case_uid = models.CharField("case ID", max_length=64)
    patient_key = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.DRAFT)
    dictionary_version = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    withdrawn_reason = models.CharField(max_length=500, blank=True)
    # Copied from data for lists and reports.
    case_month = models.CharField(max_length=7, blank=True)
    object_type = models.CharField(max_length=32, blank=True)
    organ_system = models.CharField(max_length=64, blank=True)
    technology = models.CharField(max_length=64, blank=True)  # the primary print's
    cpt_codes = models.CharField(max_length=64, blank=True)  # e.g. "0559T,0560T"
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "case_uid"], name="case_uid_unique_per_site")
        ]
        indexes = [
            models.Index(fields=["site", "status", "case_month"]),
            models.Index(fields=["site", "updated_at", "id"]),
            # The reports' snapshot reads the cases changed since its last build.
            models.Index(fields=["updated_at", "id"]),
            models.Index(fields=["organ_system"]),
            models.Index(fields=["object_type"]),
            models.Index(fields=["technology"]),
        ]
        ordering = ["-updated_at", "-id"]

    def __str__(self):
        return f"{self.site.code}/{self.case_uid} v{self.version}"

    def get_absolute_url(self):
        return reverse("case_detail", args=[self.site.code, self.case_uid])


class CaseVersion(models.Model):
    """One version of a case as it was saved, with what changed from the one before."""

    # Found by case and version (the unique constraint's index), never by site
    # or person alone; no index of their own (see Case.site).
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=CaseStatus.choices)
    dictionary_version = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    patient_key = models.CharField(max_length=128, blank=True)
    # {"path": [old, new], ...} for every element that changed. Empty for the
    # first version, whose data are all its values (see ``changed``).
    changes = models.JSONField(default=dict)
    note = models.CharField(max_length=500, blank=True)
    via = models.CharField(max_length=80, blank=True)
    changed_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "version"], name="one_row_per_case_version")
        ]
        ordering = ["case", "-version"]

    def __str__(self):
        return f"{self.case} version {self.version}"

    @property
    def changed(self) -> dict:
        """{path: [old, new]} of what this version changed; the first changed from nothing.

        The first version's changes are not stored: they would repeat its data.
        """
        if self.version == 1 and not self.changes:
            from registry3d.cases.services import first_changes

            return first_changes(self.data)
        return self.changes
