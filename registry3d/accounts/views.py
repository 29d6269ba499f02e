"""Log-in with optional two-factor step, log-out, and the account page."""

import base64
import time

import segno
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from registry3d.accounts import services
from registry3d.accounts.forms import CodeForm, LoginForm
from registry3d.accounts.models import User

PENDING_KEY = "pending_two_factor"
PENDING_SECONDS = 300
MAX_CODE_TRIES = 5
GENERIC_LOGIN_ERROR = "E-mail or password is not correct."


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def login_view(request):
    """Check e-mail and password; ask for a code when two-factor is on."""
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        wait = services.login_wait_seconds(request)
        if wait:
            return _too_many(request, wait, per_account=False)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["username"].lower()
        user = authenticate(request, username=email, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            services.record_login_failed(email, request, "locked_out")
            return _too_many(request, services.lockout_seconds(email), per_account=True)
        if user is None:
            services.note_login_failure(request)
            services.record_login_failed(email, request, "bad_credentials")
            form.add_error(None, GENERIC_LOGIN_ERROR)
            status = 400
        else:
            device = services.totp_device(user)
            if device is None:
                login(request, user)
                services.record_login(user, request)
                return HttpResponseRedirect(_next_url(request))
            request.session.cycle_key()
            request.session[PENDING_KEY] = {
                "user": user.pk,
                "backend": user.backend,
                "at": time.time(),
                "tries": 0,
                "next": _next_url(request),
            }
            return redirect("login_code")
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=status,
    )


def _too_many(request, wait: int, *, per_account: bool):
    """429 with ``Retry-After``: a pause, never a permanent ban."""
    response = render(
        request,
        "accounts/locked_out.html",
        {"minutes": -(-wait // 60), "per_account": per_account},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


def login_code(request):
    """Second step of a two-factor log-in: the code from the authenticator app."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        messages.info(request, "Please log in again.")
        return redirect("login")
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    device = services.totp_device(user) if user else None
    if device is None:
        request.session.pop(PENDING_KEY, None)
        return redirect("login")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and device.verify_token(form.cleaned_data["code"].strip()):
            request.session.pop(PENDING_KEY, None)
            user.backend = pending["backend"]
            login(request, user)
            otp_login(request, device)
            services.record_login(user, request)
            return HttpResponseRedirect(pending["next"])
        pending["tries"] += 1
        request.session[PENDING_KEY] = pending
        services.record_login_failed(user.email, request, "bad_two_factor_code")
        if pending["tries"] >= MAX_CODE_TRIES:
            request.session.pop(PENDING_KEY, None)
            messages.error(request, "Too many wrong codes. Please log in again.")
            return redirect("login")
        if form.is_valid():
            form.add_error("code", "That code is not correct or has expired.")
    return render(request, "accounts/login_code.html", {"form": form}, status=status)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        services.record_logout(request.user, request)
    logout(request)
    messages.info(request, "You have logged out.")
    return redirect("login")


@login_required
def account(request):
    """The user's own page: sites, roles and two-factor log-in."""
    return render(
        request,
        "accounts/account.html",
        {
            "memberships": request.user.memberships.select_related("site"),
            "two_factor": services.totp_device(request.user) is not None,
        },
    )


@login_required
def two_factor_setup(request):
    """Show the QR code of a new TOTP secret and turn it on once a code matches."""
    device = services.start_totp(request.user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            if services.confirm_totp(request.user, device, form.cleaned_data["code"], request):
                otp_login(request, device)
                messages.success(request, "Two-factor log-in is on.")
                return redirect("account")
            form.add_error("code", "That code is not correct; check the phone's clock.")
    qr = segno.make(device.config_url, error="m")
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": qr.svg_data_uri(scale=4),
            "secret": secret,
        },
        status=status,
    )


@login_required
@require_POST
def two_factor_disable(request):
    services.disable_totp(request.user, request)
    messages.info(request, "Two-factor log-in is off.")
    return redirect("account")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, recorded in the audit trail."""

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(form.user, self.request, "auth.password_changed")
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Choosing a password from an e-mailed link, recorded in the audit trail."""

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(form.user, self.request, "auth.password_reset")
        return response


def axes_lockout(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out account (AXES_LOCKOUT_CALLABLE)."""
    email = str((credentials or {}).get("username") or request.POST.get("username", "")).lower()
    return _too_many(request, services.lockout_seconds(email), per_account=True)
