"""Participant sites, who belongs to them, and the tokens their software uses."""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

SITE_CODE_RE = r"^[A-Z0-9][A-Z0-9_]{1,15}$"
site_code_validator = RegexValidator(
    SITE_CODE_RE,
    "Site codes are 2 to 16 capital letters, digits or _, e.g. MIH01",
)


class FacilityType(models.TextChoices):
    ACADEMIC = "academic", "Academic medical centre"
    COMMUNITY = "community", "Community hospital"
    CHILDRENS = "childrens", "Children's hospital"
    PRIVATE_PRACTICE = "private_practice", "Private practice"
    GOVERNMENT = "government", "Government / VA / military"
    OTHER = "other", "Other"


class Site(models.Model):
    """A participating hospital, clinic or practice."""

    code = models.CharField(max_length=16, unique=True, validators=[site_code_validator])
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, default="US", help_text="ISO 3166-1 alpha-2 code")
    region = models.CharField(max_length=100, blank=True, help_text="State, province or region")
    facility_type = models.CharField(
        max_length=32, choices=FacilityType.choices, default=FacilityType.OTHER
    )
    active = models.BooleanField(default=True)
    joined_on = models.DateField()
    # Used to turn reported operating-room minutes saved into money; empty
    # means the registry's default (REGISTRY3D_OR_COST_PER_MINUTE).
    or_cost_per_minute_usd = models.DecimalField(
        "operating-room cost per minute (USD)",
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
    )

    # Loaded staff cost per hour (pay and benefits), which turns the case's
    # effort minutes into labour cost; empty means the registry's default,
    # and without either the site's cases have no labour cost.
    clinician_cost_per_hour_usd = models.DecimalField(
        "clinician cost per hour (USD)", max_digits=7, decimal_places=2, null=True, blank=True
    )
    non_clinician_cost_per_hour_usd = models.DecimalField(
        "non-clinician cost per hour (USD)", max_digits=7, decimal_places=2, null=True, blank=True
    )

    # Whether the 3D model files the site's software measures through the API
    # are kept (by content hash, up to REGISTRY3D_MODEL_FILE_MAX_BYTES);
    # without it they are measured and forgotten.
    keep_model_files = models.BooleanField("keep measured 3D model files", default=False)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} – {self.name}"

    def get_absolute_url(self):
        return reverse("site_home", args=[self.code])

    @property
    def or_cost(self) -> tuple[float, str]:
        """The operating-room cost per minute used in reports, and where it came from."""
        if self.or_cost_per_minute_usd is not None:
            return float(self.or_cost_per_minute_usd), "set by the site"
        return settings.REGISTRY3D_OR_COST_PER_MINUTE, settings.REGISTRY3D_OR_COST_SOURCE

    @property
    def staff_costs(self) -> dict[str, tuple[float | None, str]]:
        """Hourly cost of clinician and non-clinician time, and where each came from."""
        out = {}
        for who, own, default in (
            (
                "clinician",
                self.clinician_cost_per_hour_usd,
                settings.REGISTRY3D_CLINICIAN_COST_PER_HOUR,
            ),
            (
                "non_clinician",
                self.non_clinician_cost_per_hour_usd,
                settings.REGISTRY3D_NON_CLINICIAN_COST_PER_HOUR,
            ),
        ):
            if own is not None:
                out[who] = (float(own), "set by the site")
            elif default is not None:
                out[who] = (default, "registry default")
            else:
                out[who] = (None, "not set")
        return out


class SiteRole(models.TextChoices):
    """What a member may do at one site; each role includes the ones above."""

    VIEWER = "viewer", "Viewer"
    CONTRIBUTOR = "contributor", "Contributor"
    MANAGER = "manager", "Manager"


ROLE_RANK = {SiteRole.VIEWER: 1, SiteRole.CONTRIBUTOR: 2, SiteRole.MANAGER: 3}


class Membership(models.Model):
    """Ties one person to one site with one role."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=SiteRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "user"], name="one_membership_per_site")
        ]
        ordering = ["site__code", "user__email"]

    def __str__(self):
        return f"{self.user} is {self.role} at {self.site.code}"

    def allows(self, role: str) -> bool:
        """Return whether this membership's role is at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class TokenKind(models.TextChoices):
    """Where a token works: the registry's API, or the REDCap-compatible one."""

    API = "api", "Registry API (/api/)"
    REDCAP = "redcap", "REDCap API (/redcap/api/)"


class ApiToken(models.Model):
    """A bearer token for one site's software, acting as one member.

    Only the SHA-256 of the token is stored; the token itself is shown once.
    Tokens are long random strings, so a fast hash is enough to make a
    stolen table useless. An API token (``r3d_…``) works only at /api/; a
    REDCap token (32 hexadecimal characters, REDCap's own format) only at
    /redcap/api/.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="tokens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices)
    kind = models.CharField(max_length=8, choices=TokenKind.choices, default=TokenKind.API)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.site.code}, {self.scope}, {self.kind})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Printer(models.Model):
    """One printer in a site's inventory; cases name it by its label."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="printers")
    label = models.CharField(max_length=64)
    manufacturer = models.CharField(max_length=100)
    model = models.CharField(max_length=100)
    # A code of the dictionary's print_technology value set (ISO/ASTM 52900).
    technology = models.CharField(max_length=32)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "label"], name="printer_label_unique_per_site")
        ]
        ordering = ["site__code", "label"]

    def __str__(self):
        return f"{self.label} ({self.manufacturer} {self.model})"

    @property
    def technology_label(self) -> str:
        from registry3d.dictionary.registry import current

        value_set = current().dictionary.value_sets.get("print_technology")
        return value_set.label_of(self.technology) if value_set else self.technology


class Throttle(models.Model):
    """One rate limit's state, shared by every server process (see lib.ratelimit).

    ``ready_at`` is the theoretical arrival time of the generic cell rate
    algorithm, in seconds since the epoch: a request is let through while
    it is no later than now plus the burst allowance.
    """

    key = models.CharField(max_length=80, primary_key=True)
    ready_at = models.FloatField(db_index=True)

    def __str__(self):
        return self.key
