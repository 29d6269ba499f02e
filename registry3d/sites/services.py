"""Everything that changes sites, members, tokens and printers.

Pages, the API and the command line call these functions and nothing else,
so each change is checked and audited in one place.
"""

import functools
import hashlib
import json
import re
import secrets
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from registry3d.accounts.models import RegistryRole
from registry3d.audit.services import record
from registry3d.lib.sql import instances, quoted, select_columns
from registry3d.lib.text_screen import find_identifier, find_identifier_in_token
from registry3d.sites.errors import (
    DuplicateSite,
    DuplicateUser,
    IdentifierSuspected,
    InvalidValue,
    LastManager,
    NotAMember,
    UnknownSite,
    UnknownUser,
)
from registry3d.sites.models import (
    SITE_CODE_RE,
    ApiToken,
    FacilityType,
    Membership,
    Printer,
    Site,
    SiteRole,
    TokenKind,
    TokenScope,
)

User = get_user_model()
TOKEN_PREFIX = "r3d_"
# REDCap's own token format: 32 uppercase hexadecimal characters (128 bits),
# so REDCap clients that check it (PyCap does) accept the registry's tokens.
REDCAP_TOKEN_RE = re.compile(r"^[0-9A-F]{32}$")


def _choice(value: str, choices, what: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise InvalidValue(f"Unknown {what} {value!r}; expected one of: {allowed}")
    return value


def parse_role(value: str) -> str:
    """Return ``value`` if it is a site role, else raise :class:`InvalidValue`."""
    return _choice(value, SiteRole, "role")


# --- Access -------------------------------------------------------------------


def membership_for(user, site: Site) -> Membership | None:
    """Return the user's membership at ``site``, or None."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(site=site, user=user).first()


def sites_for_user(user):
    """Return the sites the user may open: their own, or all for staff."""
    if not user.is_authenticated or not user.is_active:
        return Site.objects.none()
    if user.is_registry_staff:
        return Site.objects.all()
    return Site.objects.filter(memberships__user=user).distinct()


def get_site_for_user(
    user, code: str, role: str = SiteRole.VIEWER, *, case_level: bool = True
) -> Site:
    """Return the site ``code`` if the user may act on it with ``role``.

    A site the user does not belong to is a 404, whether or not it exists,
    so nobody learns another site's code by probing. Registry admins may do
    everything. Registry analysts see aggregates only: they may read the
    site pages that hold no case-level data (those pass ``case_level=False``:
    the site's overview, dashboard and feedback report); every other page,
    each case page among them, answers them 404 as another site's would.
    """
    site = Site.objects.filter(code=code).first()
    if site is None or not user.is_authenticated or not user.is_active:
        raise Http404("No such site")
    if user.is_registry_admin:
        return site
    membership = membership_for(user, site)
    if membership is None:
        if user.is_registry_staff and role == SiteRole.VIEWER and not case_level:
            return site
        raise Http404("No such site")
    if not membership.allows(role):
        raise PermissionDenied(
            f"This page needs the {SiteRole(role).label.lower()} role at {site.code}"
        )
    return site


def sees_cases(user, site: Site) -> bool:
    """Whether ``user`` may open the site's case pages (the rule of the gate above)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_registry_admin or membership_for(user, site) is not None


def reads_as_registry_staff(user, site: Site) -> bool:
    """Whether a read of the site's case pages by ``user`` is a disclosure to the registry.

    Registry admins, and anyone with a registry role who is not a member of
    the site: their reads of case pages are recorded as ``case.viewed``.
    """
    if not user.is_authenticated or not user.registry_role:
        return False
    return user.is_registry_admin or membership_for(user, site) is None


# --- Sites --------------------------------------------------------------------


def add_site(
    code: str,
    name: str,
    *,
    country: str = "US",
    region: str = "",
    facility_type: str = FacilityType.OTHER,
    joined_on: date | None = None,
    actor=None,
    request: HttpRequest | None = None,
) -> Site:
    """Create a participant site."""
    if not re.match(SITE_CODE_RE, code):
        raise InvalidValue(
            f"Site code {code!r} is not valid; use 2 to 16 capital letters, "
            "digits or _, starting with a letter or digit (e.g. MIH01)"
        )
    if not name.strip():
        raise InvalidValue("A site needs a name")
    if not re.match(r"^[A-Z]{2}$", country):
        raise InvalidValue(
            f"Country {country!r} is not valid; use a two-letter ISO code such as US"
        )
    _choice(facility_type, FacilityType, "facility type")
    with transaction.atomic():
        if Site.objects.filter(code=code).exists():
            raise DuplicateSite(f"Site {code} already exists")
        site = Site.objects.create(
            code=code,
            name=name.strip(),
            country=country,
            region=region.strip(),
            facility_type=facility_type,
            joined_on=joined_on or timezone.localdate(),
        )
        record(
            "site.created",
            actor=actor,
            request=request,
            site=site,
            target=site,
            changes={
                "name": site.name,
                "country": site.country,
                "region": site.region,
                "facility_type": site.facility_type,
            },
        )
    return site


def find_site(code: str) -> Site:
    """Return the site with this code or raise :class:`UnknownSite`."""
    site = Site.objects.filter(code=code).first()
    if site is None:
        raise UnknownSite(f"No site has the code {code!r}")
    return site


# --- People -------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """Return the address lower-cased, or raise :class:`InvalidValue`."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidValue(f"{email!r} is not a valid e-mail address") from None
    return email


def find_user(email: str):
    """Return the account with this address or raise :class:`UnknownUser`."""
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        raise UnknownUser(f"No account has the e-mail address {email!r}")
    return user


def check_new_account(email: str, password: str, full_name: str = "") -> None:
    """Raise :class:`InvalidValue` if the address or password would be refused."""
    email = normalise_email(email)
    try:
        validate_password(password, User(email=email, full_name=full_name))
    except ValidationError as exc:
        raise InvalidValue("Password refused: " + " ".join(exc.messages)) from None


def add_user(
    email: str,
    password: str | None,
    *,
    full_name: str = "",
    registry_role: str = "",
    actor=None,
    request: HttpRequest | None = None,
):
    """Create an account; without a password it cannot log in until one is set."""
    email = normalise_email(email)
    _choice(registry_role, RegistryRole, "registry role")
    if password is not None:
        check_new_account(email, password, full_name)
    try:
        with transaction.atomic():
            if User.objects.filter(email=email).exists():
                raise DuplicateUser(f"An account for {email} already exists")
            user = User.objects.create_user(
                email, password, full_name=full_name, registry_role=registry_role
            )
            record(
                "user.created",
                actor=actor,
                request=request,
                target=user,
                changes={"email": email, "registry_role": registry_role},
            )
    except IntegrityError:
        raise DuplicateUser(f"An account for {email} already exists") from None
    return user


def set_membership(
    site: Site, user, role: str, *, actor=None, request: HttpRequest | None = None
) -> Membership:
    """Give ``user`` the ``role`` at ``site``, adding them if needed."""
    parse_role(role)
    with transaction.atomic():
        membership = _locked_membership(site, user)
        if membership is None:
            membership = Membership.objects.create(site=site, user=user, role=role)
            record(
                "membership.added",
                actor=actor,
                request=request,
                site=site,
                target=user,
                changes={"role": [None, role]},
            )
            return membership
        if membership.role == role:
            return membership
        old = membership.role
        if old == SiteRole.MANAGER:
            _keep_a_manager(site, leaving=user)
        membership.role = role
        membership.save(update_fields=["role"])
        record(
            "membership.role_changed",
            actor=actor,
            request=request,
            site=site,
            target=user,
            changes={"role": [old, role]},
        )
    return membership


def _locked_membership(site: Site, user) -> Membership | None:
    """Lock and return the membership row alone.

    Without ``of`` and the cleared ordering, PostgreSQL would also lock the
    joined site and user rows, and concurrent changes could deadlock.
    """
    return (
        Membership.objects.select_for_update(of=("self",))
        .filter(site=site, user=user)
        .order_by()
        .first()
    )


def _keep_a_manager(site: Site, leaving) -> None:
    others = (
        Membership.objects.filter(site=site, role=SiteRole.MANAGER).exclude(user=leaving).exists()
    )
    if not others:
        raise LastManager(
            f"{leaving.email} is the only manager of {site.code}; make someone else manager first"
        )


def remove_membership(site: Site, user, *, actor=None, request: HttpRequest | None = None) -> None:
    """Take ``user`` out of ``site`` and revoke the tokens acting as them there."""
    with transaction.atomic():
        membership = _locked_membership(site, user)
        if membership is None:
            raise NotAMember(f"{user.email} is not a member of {site.code}")
        if membership.role == SiteRole.MANAGER:
            _keep_a_manager(site, leaving=user)
        membership.delete()
        revoked = ApiToken.objects.filter(site=site, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        record(
            "membership.removed",
            actor=actor,
            request=request,
            site=site,
            target=user,
            changes={"role": [membership.role, None], "tokens_revoked": revoked},
        )


def invite_member(
    site: Site,
    email: str,
    role: str,
    *,
    actor,
    request: HttpRequest | None = None,
) -> tuple[Membership, bool]:
    """Add a person to a site by e-mail, creating their account if needed.

    A new account has no password; the invitation e-mail carries a link to
    set one. Returns the membership and whether an account was created.
    """
    from registry3d.accounts.services import send_invitation

    email = normalise_email(email)
    parse_role(role)
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        created = user is None
        if created:
            user = add_user(email, None, actor=actor, request=request)
        if Membership.objects.filter(site=site, user=user).exists():
            raise InvalidValue(f"{email} is already a member of {site.code}")
        membership = set_membership(site, user, role, actor=actor, request=request)
        send_invitation(user, site, role, invited_by=actor, new_account=created, request=request)
    return membership, created


# --- API tokens ---------------------------------------------------------------


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _looks_like(name: str, found: str) -> str:
    """The refusal of typed text that looks like an identifier, naming the field and the kind."""
    return (
        f"{name}: this looks like {found}; the registry never stores patient identifiers, "
        "so remove it"
    )


def create_token(
    site: Site,
    user,
    *,
    name: str,
    scope: str = TokenScope.READ,
    kind: str = TokenKind.API,
    actor=None,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` at ``site``; return it and its only clear copy.

    The token can never do more than its owner: a write token needs a
    contributor or manager, and it stops working when the owner leaves. An
    API token (``r3d_…``) works at /api/, a REDCap token (32 hexadecimal
    characters) at /redcap/api/, neither at the other.
    """
    _choice(scope, TokenScope, "scope")
    _choice(kind, TokenKind, "token kind")
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidValue("A token needs a name of 1 to 100 characters")
    found = find_identifier(name)
    if found:  # the name is written into the token.created event, kept for good (#15)
        raise IdentifierSuspected(_looks_like("Token name", found), "name")
    membership = membership_for(user, site)
    if membership is None:
        raise NotAMember(f"{user.email} is not a member of {site.code}")
    if scope == TokenScope.WRITE and not membership.allows(SiteRole.CONTRIBUTOR):
        raise InvalidValue(
            f"{user.email} is a viewer at {site.code}; a write token needs a contributor or manager"
        )
    if kind == TokenKind.REDCAP:
        raw = secrets.token_hex(16).upper()
        prefix = raw[:6]
    else:
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        prefix = raw[:10]
    with transaction.atomic():
        token = ApiToken.objects.create(
            site=site,
            user=user,
            name=name,
            scope=scope,
            kind=kind,
            prefix=prefix,
            token_hash=hash_token(raw),
            created_by=actor,
        )
        record(
            "token.created",
            actor=actor,
            request=request,
            site=site,
            target=token,
            changes={
                "name": name,
                "scope": scope,
                "kind": kind,
                "user": user.email,
                "prefix": token.prefix,
            },
        )
    return token, raw


def revoke_token(token: ApiToken, *, actor=None, request: HttpRequest | None = None) -> None:
    """Stop a token from working; revoking twice is harmless."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            record(
                "token.revoked",
                actor=actor,
                request=request,
                site=token.site,
                target=token,
                changes={"name": token.name, "prefix": token.prefix},
            )
    token.refresh_from_db()


@functools.cache
def _token_query() -> str:
    """The one statement that finds a token with its site, owner and membership."""
    parts = {"t": ApiToken, "s": Site, "u": User, "m": Membership}
    columns = ", ".join(select_columns(alias, model) for alias, model in parts.items())
    table = {alias: quoted(model._meta.db_table) for alias, model in parts.items()}
    # The site's printer labels come along: every case write checks them.
    aggregate = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
    printers = quoted(Printer._meta.db_table)
    labels = f"(SELECT {aggregate}(p.label) FROM {printers} p WHERE p.site_id = t.site_id)"
    return (
        f"SELECT {columns}, {labels} FROM {table['t']} t"
        f" JOIN {table['s']} s ON s.id = t.site_id"
        f" JOIN {table['u']} u ON u.id = t.user_id"
        f" LEFT JOIN {table['m']} m ON m.site_id = t.site_id AND m.user_id = t.user_id"
        " WHERE t.token_hash = %s AND t.kind = %s AND t.revoked_at IS NULL"
    )


def authenticate_token(raw: str, kind: str = TokenKind.API) -> ApiToken | None:
    """Return the live token of ``kind`` for ``raw``, or None.

    A token is live while it is not revoked, its owner's account is active
    and its owner is still a member of its site with a role its scope needs.
    A token of the other kind is None: /api/ takes only API tokens and
    /redcap/api/ only REDCap tokens. Its last-used time is updated at most
    once a minute. Every API request calls this, so it is one statement, not
    one per object.
    """
    if kind == TokenKind.REDCAP:
        if not isinstance(raw, str) or not REDCAP_TOKEN_RE.match(raw):
            return None
    elif not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_token_query(), [hash_token(raw), kind])
        row = cursor.fetchone()
    if row is None:
        return None
    token, site, user, membership = instances(row, ApiToken, Site, User, Membership)
    if not user.is_active or not site.active or membership is None:
        return None
    labels = row[-1]
    site.printer_labels = json.loads(labels) if isinstance(labels, str) else labels or []
    token.site = site
    token.user = user
    membership.site = site
    membership.user = user
    token.membership = membership
    now = timezone.now()
    stale = token.last_used_at is None or (
        (now - token.last_used_at).total_seconds() > settings.API_TOKEN_TOUCH_SECONDS
    )
    if stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_can_write(token: ApiToken) -> bool:
    """Return whether the token's scope and its owner's role allow writing."""
    membership = getattr(token, "membership", None) or membership_for(token.user, token.site)
    return (
        token.scope == TokenScope.WRITE
        and membership is not None
        and membership.allows(SiteRole.CONTRIBUTOR)
    )


# --- Printers -----------------------------------------------------------------


def add_printer(
    site: Site,
    *,
    label: str,
    manufacturer: str,
    model: str,
    technology: str,
    actor=None,
    request: HttpRequest | None = None,
) -> Printer:
    """Add a printer to the site's inventory; labels are unique per site."""
    label = label.strip()
    if not re.match(r"^[A-Za-z0-9_\-]{1,64}$", label):
        raise InvalidValue("The printer label is not valid; use 1 to 64 letters, digits, - or _")
    technologies = print_technologies()
    if technology not in technologies:
        raise InvalidValue(
            f"Unknown technology {technology!r}; expected one of: {', '.join(technologies)}"
        )
    if not manufacturer.strip() or not model.strip():
        raise InvalidValue("A printer needs a manufacturer and a model")
    # Each is written into the printer.added event, kept for good (#15).
    for field, name, found in (
        ("label", "Printer label", find_identifier_in_token(label)),
        ("manufacturer", "Manufacturer", find_identifier(manufacturer)),
        ("model", "Model", find_identifier(model)),
    ):
        if found:
            raise IdentifierSuspected(_looks_like(name, found), field)
    with transaction.atomic():
        if Printer.objects.filter(site=site, label=label).exists():
            raise InvalidValue(f"{site.code} already has a printer labelled {label}")
        printer = Printer.objects.create(
            site=site,
            label=label,
            manufacturer=manufacturer.strip(),
            model=model.strip(),
            technology=technology,
        )
        record(
            "printer.added",
            actor=actor,
            request=request,
            site=site,
            target=printer,
            changes={
                "label": label,
                "manufacturer": printer.manufacturer,
                "model": printer.model,
                "technology": technology,
            },
        )
    site.__dict__.pop("printer_labels", None)  # read with a token, now one short
    return printer


def print_technologies() -> list[str]:
    """The ISO/ASTM 52900 technology codes offered by the data dictionary."""
    from registry3d.dictionary.registry import current

    return current().dictionary.value_sets["print_technology"].active_codes()


def set_printer_active(
    printer: Printer, active: bool, *, actor=None, request: HttpRequest | None = None
) -> None:
    """Take a printer out of service, or back; cases keep naming it."""
    with transaction.atomic():
        if printer.active == active:
            return
        printer.active = active
        printer.save(update_fields=["active"])
        record(
            "printer.reactivated" if active else "printer.retired",
            actor=actor,
            request=request,
            site=printer.site,
            target=printer,
            changes={"label": printer.label, "active": [not active, active]},
        )


# The site's cost settings: field, what it is called in messages, its range.
COST_SETTINGS = {
    "or_cost_per_minute_usd": ("The operating-room cost per minute", 1, 1000),
    "clinician_cost_per_hour_usd": ("The clinician cost per hour", 1, 5000),
    "non_clinician_cost_per_hour_usd": ("The non-clinician cost per hour", 1, 5000),
}


def set_costs(site: Site, *, actor=None, request: HttpRequest | None = None, **values) -> None:
    """Set some of the site's cost settings (None: the registry default).

    ``values`` are fields of :data:`COST_SETTINGS`; all are checked before
    any is saved, and one audit event records what changed.
    """
    from decimal import Decimal, InvalidOperation

    clean = {}
    for name, value in values.items():
        what, low, high = COST_SETTINGS[name]
        if value is not None:
            try:
                value = Decimal(str(value)).quantize(Decimal("0.01"))
            except InvalidOperation:
                raise InvalidValue(f"{what} must be a number, e.g. 62 or 37.45") from None
            if not Decimal(low) <= value <= Decimal(high):
                raise InvalidValue(f"{what} must be between {low} and {high} USD")
        clean[name] = value
    with transaction.atomic():
        changes = {
            name: [getattr(site, name), value]
            for name, value in clean.items()
            if getattr(site, name) != value
        }
        if not changes:
            return
        for name, (_, value) in changes.items():
            setattr(site, name, value)
        site.save(update_fields=list(changes))
        record(
            "site.settings_changed",
            actor=actor,
            request=request,
            site=site,
            target=site,
            changes=changes,
        )


def set_keep_model_files(
    site: Site, keep: bool, *, actor=None, request: HttpRequest | None = None
) -> None:
    """Turn keeping the site's measured 3D model files on or off (files kept stay)."""
    with transaction.atomic():
        if site.keep_model_files == keep:
            return
        site.keep_model_files = keep
        site.save(update_fields=["keep_model_files"])
        record(
            "site.settings_changed",
            actor=actor,
            request=request,
            site=site,
            target=site,
            changes={"keep_model_files": [not keep, keep]},
        )
