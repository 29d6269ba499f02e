"""Site pages: home, site picker, members and API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from registry3d.audit.models import AuditEvent
from registry3d.questionnaires import services as questionnaires
from registry3d.sites import services
from registry3d.sites.errors import IdentifierSuspected, SiteError
from registry3d.sites.forms import (
    InviteForm,
    ModelFilesForm,
    OrCostForm,
    PrinterForm,
    RoleForm,
    StaffCostForm,
    TokenForm,
)
from registry3d.sites.middleware import remember_site
from registry3d.sites.models import ApiToken, Membership, Printer, SiteRole, TokenKind


@login_required
def home(request):
    """Send the user to the site they last used, or their first site."""
    site = request.current_site or services.sites_for_user(request.user).first()
    if site is not None and not request.user.is_registry_staff:
        return redirect(site)
    return render(
        request,
        "sites/home.html",
        {"sites": services.sites_for_user(request.user)},
    )


def _case_counts(site) -> dict:
    from django.db.models import Count

    counts = {"total": 0, "draft": 0, "submitted": 0, "withdrawn": 0}
    for row in site.cases.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
        counts["total"] += row["n"]
    return counts


@login_required
def site_switch(request):
    """Make another of the user's sites the current one."""
    site = services.get_site_for_user(request.user, request.GET.get("site", ""), case_level=False)
    remember_site(request, site)
    return redirect(site)


@login_required
def site_home(request, code):
    site = services.get_site_for_user(request.user, code, case_level=False)
    remember_site(request, site)
    membership = services.membership_for(request.user, site)
    is_manager = request.user.is_registry_admin or (
        membership is not None and membership.allows(SiteRole.MANAGER)
    )
    context = {
        "site": site,
        "membership": membership,
        "is_manager": is_manager,
        "member_count": site.memberships.count(),
        "printers": site.printers.filter(active=True),
        "token_count": site.tokens.filter(revoked_at__isnull=True).count(),
        "case_counts": _case_counts(site),
        "sees_cases": services.sees_cases(request.user, site),
        "questionnaire_rates": questionnaires.rates(site),
        "can_write": request.user.is_registry_admin
        or (membership is not None and membership.allows(SiteRole.CONTRIBUTOR)),
        "recent_events": (
            AuditEvent.objects.filter(site=site).select_related("actor")[:5] if is_manager else []
        ),
    }
    return render(request, "sites/site_home.html", context)


def _members_context(site, **extra):
    return {
        "site": site,
        "members": Membership.objects.filter(site=site).select_related("user"),
        "roles": SiteRole.choices,
        "is_manager": True,
        **extra,
    }


@login_required
def site_members(request, code):
    """List members; invite someone by e-mail."""
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _, created = services.invite_member(
                    site,
                    form.cleaned_data["email"],
                    form.cleaned_data["role"],
                    actor=request.user,
                    request=request,
                )
            except SiteError as exc:
                form.add_error("email", str(exc))
            else:
                email = form.cleaned_data["email"].lower()
                messages.success(
                    request,
                    f"{email} was added" + (" and invited to set a password." if created else "."),
                )
                return redirect("site_members", code=site.code)
    return render(request, "sites/members.html", _members_context(site, form=form), status=status)


@login_required
@require_POST
def member_role(request, code, member):
    """Change one member's role; htmx gets the updated table row back."""
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), site=site, code=member
    )
    email = membership.user.email
    form = RoleForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            membership = services.set_membership(
                site,
                membership.user,
                form.cleaned_data["role"],
                actor=request.user,
                request=request,
            )
        except SiteError as exc:
            error = str(exc)
    else:
        error = "Choose one of the roles offered."
    if request.htmx:
        return render(
            request,
            "sites/_member_row.html",
            {"site": site, "m": membership, "roles": SiteRole.choices, "error": error},
            status=400 if error else 200,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{email} is now {membership.get_role_display().lower()}.")
    return redirect("site_members", code=site.code)


@login_required
@require_POST
def member_remove(request, code, member):
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), site=site, code=member
    )
    try:
        services.remove_membership(site, membership.user, actor=request.user, request=request)
    except SiteError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.email} no longer belongs to {site.code}.")
    return redirect("site_members", code=site.code)


@login_required
def site_tokens(request, code):
    """List the site's API tokens; create one and show it exactly once."""
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    members = Membership.objects.filter(site=site).select_related("user")
    form = TokenForm(
        request.POST or None,
        members=members,
        initial={"user": request.user.email},
    )
    new_token = None
    new_kind = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                owner = services.find_user(form.cleaned_data["user"])
                token, new_token = services.create_token(
                    site,
                    owner,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    kind=form.cleaned_data["kind"] or TokenKind.API,
                    actor=request.user,
                    request=request,
                )
            except IdentifierSuspected as exc:
                form = _refused(form, exc, members=members)
            except SiteError as exc:
                form.add_error(None, str(exc))
            else:
                status = 201
                new_kind = token.kind
                form = TokenForm(members=members, initial={"user": request.user.email})
    tokens = ApiToken.objects.filter(site=site).select_related("user", "created_by")
    return render(
        request,
        "sites/tokens.html",
        {
            "site": site,
            "tokens": tokens,
            "form": form,
            "new_token": new_token,
            "new_kind": new_kind,
            "redcap_url": request.build_absolute_uri(reverse("redcap_api")),
            "is_manager": True,
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke(request, code, token_code):
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    token = get_object_or_404(ApiToken, site=site, code=token_code)
    services.revoke_token(token, actor=request.user, request=request)
    messages.success(request, f"Token “{token.name}” was revoked.")
    return redirect("site_tokens", code=site.code)


def _technologies():
    from registry3d.dictionary.registry import current

    value_set = current().dictionary.value_sets["print_technology"]
    return [(c.code, c.label) for c in value_set.codes if c.active]


def _initial(form_class, site) -> dict:
    return {name: getattr(site, name) for name in form_class.base_fields}


@login_required
def site_settings(request, code):
    """The site's reference data: printer inventory, operating-room and staff costs."""
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    cost_forms = {
        "cost": OrCostForm(initial=_initial(OrCostForm, site)),
        "staff_cost": StaffCostForm(initial=_initial(StaffCostForm, site)),
    }
    saved = {
        "cost": "The operating-room cost was saved.",
        "staff_cost": "The staff costs were saved.",
    }
    printer_form = PrinterForm(technologies=_technologies())
    status = 200
    if request.method == "POST":
        status = 400
        action = request.POST.get("action")
        if action in cost_forms:
            form = cost_forms[action] = type(cost_forms[action])(request.POST)
            if form.is_valid():
                services.set_costs(site, actor=request.user, request=request, **form.cleaned_data)
                messages.success(request, saved[action])
                return redirect("site_settings", code=site.code)
        elif action == "model_files":
            files_form = ModelFilesForm(request.POST)
            if files_form.is_valid():
                keep = files_form.cleaned_data["keep_model_files"]
                services.set_keep_model_files(site, keep, actor=request.user, request=request)
                messages.success(
                    request,
                    "3D model files are kept from now on."
                    if keep
                    else "3D model files are no longer kept; those kept stay.",
                )
                return redirect("site_settings", code=site.code)
        elif action == "printer":
            printer_form = PrinterForm(request.POST, technologies=_technologies())
            if printer_form.is_valid():
                try:
                    services.add_printer(
                        site, **printer_form.cleaned_data, actor=request.user, request=request
                    )
                except IdentifierSuspected as exc:
                    printer_form = _refused(printer_form, exc, technologies=_technologies())
                except SiteError as exc:
                    printer_form.add_error("label", str(exc))
                else:
                    messages.success(
                        request, f"Printer {printer_form.cleaned_data['label']} added."
                    )
                    return redirect("site_settings", code=site.code)
    cost, source = site.or_cost
    return render(
        request,
        "sites/settings.html",
        {
            "site": site,
            "is_manager": True,
            "cost": cost,
            "cost_source": source,
            "cost_form": cost_forms["cost"],
            "staff_costs": site.staff_costs,
            "files_form": ModelFilesForm(initial={"keep_model_files": site.keep_model_files}),
            "kept_files": site.model_files.count(),
            "staff_cost_form": cost_forms["staff_cost"],
            "printer_form": printer_form,
            "printers": Printer.objects.filter(site=site),
        },
        status=status,
    )


@login_required
@require_POST
def printer_active(request, code, printer):
    site = services.get_site_for_user(request.user, code, SiteRole.MANAGER)
    target = get_object_or_404(Printer, site=site, code=printer)
    services.set_printer_active(
        target, request.POST.get("active") == "yes", actor=request.user, request=request
    )
    return redirect("site_settings", code=site.code)


def _refused(form, exc: IdentifierSuspected, **kwargs):
    """``form`` shown again with the field that looks like an identifier emptied.

    The refused value is never echoed, not even in its own input (#15).
    """
    data = form.data.copy()
    data[exc.field] = ""
    again = type(form)(data, **kwargs)
    again.is_valid()
    again.errors.pop(exc.field, None)
    again.add_error(exc.field, str(exc))
    return again
