"""Log-in events, invitations and two-factor devices."""

import math

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry3d.accounts.tasks import send_email
from registry3d.audit.services import record
from registry3d.lib.net import client_ip
from registry3d.lib.ratelimit import limiter


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """Return ``path`` as a full address for an e-mail."""
    if settings.REGISTRY3D_BASE_URL:
        return settings.REGISTRY3D_BASE_URL + path
    if request is not None:
        return request.build_absolute_uri(path)
    return "http://127.0.0.1:8000" + path


def password_set_path(user) -> str:
    """Return the path of a one-time link that lets ``user`` choose a password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", args=[uid, token])


def send_invitation(user, site, role, *, invited_by, new_account: bool, request=None):
    """Queue the e-mail telling ``user`` they were added to ``site``.

    The job is queued only once the surrounding transaction commits, so a
    refused invitation never sends mail.
    """
    context = {
        "user": user,
        "site": site,
        "role": role,
        "invited_by": invited_by,
        "new_account": new_account,
        "registry_name": settings.REGISTRY3D_NAME,
        "link": absolute_url(password_set_path(user) if new_account else reverse("login"), request),
    }
    subject = f"You have been added to {site.name} on {settings.REGISTRY3D_NAME}"
    text = render_to_string("accounts/email/invitation.txt", context)
    html = render_to_string("accounts/email/invitation.html", context)
    transaction.on_commit(
        lambda: send_email.enqueue(to=[user.email], subject=subject, text=text, html=html)
    )
    record(
        "membership.invitation_sent",
        actor=invited_by,
        request=request,
        site=site,
        target=user,
        changes={"email": user.email, "new_account": new_account},
    )


def _login_limit(request: HttpRequest) -> tuple[str, float, float]:
    per_minute = settings.REGISTRY3D_LOGIN_FAILURES_PER_MINUTE
    return f"login:{client_ip(request) or 'unknown'}", per_minute / 60, per_minute


def login_wait_seconds(request: HttpRequest) -> int:
    """Seconds this address must wait before its next log-in attempt (0: go on).

    Failed log-ins are counted per address, across accounts, so one machine
    cannot try a password on every account; the per-account lock-out
    (django-axes) stops guessing at one account from many addresses.
    Successful log-ins are not counted: a hospital's staff often share one
    outgoing address.
    """
    wait = limiter.wait(*_login_limit(request))
    return max(1, math.ceil(wait)) if wait else 0


def note_login_failure(request: HttpRequest) -> None:
    limiter.take(*_login_limit(request))


def lockout_seconds(email: str) -> int:
    """Seconds until a locked-out account may try again."""
    latest = (
        AccessAttempt.objects.filter(username=email)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    cooloff = settings.AXES_COOLOFF_TIME.total_seconds()
    if latest is None:
        return int(cooloff)
    return max(1, math.ceil((latest - timezone.now()).total_seconds() + cooloff))


def record_login(user, request: HttpRequest) -> None:
    record("auth.login", actor=user, request=request, target=user)


def record_login_failed(email: str, request: HttpRequest, reason: str) -> None:
    # The address typed is kept as the label, not linked to an account, so
    # the trail does not confirm which addresses exist.
    record(
        "auth.login_failed",
        request=request,
        actor_label=email[:254],
        changes={"reason": reason},
    )


def record_logout(user, request: HttpRequest) -> None:
    record("auth.logout", actor=user, request=request, target=user)


def record_password_change(user, request: HttpRequest, action: str) -> None:
    record(action, actor=user, request=request, target=user)


def start_totp(user) -> TOTPDevice:
    """Return the user's unconfirmed TOTP device, creating it if needed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def confirm_totp(user, device: TOTPDevice, code: str, request: HttpRequest) -> bool:
    """Turn on two-factor log-in if ``code`` matches the new device."""
    if not device.verify_token(code.strip()):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record("auth.two_factor_enabled", actor=user, request=request, target=user)
    return True


def disable_totp(user, request: HttpRequest) -> None:
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        record("auth.two_factor_disabled", actor=user, request=request, target=user)


def totp_device(user) -> TOTPDevice | None:
    """Return the user's confirmed TOTP device, if two-factor log-in is on."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()
