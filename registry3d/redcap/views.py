"""Pages for registry analysts: dictionary versions proposed from REDCap files."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from registry3d.dictionary import registry
from registry3d.redcap import services
from registry3d.redcap.errors import ProposalRefused
from registry3d.redcap.models import DictionaryProposal, ProposalStatus


class ProposalForm(forms.Form):
    file = forms.FileField(
        label="REDCap data dictionary (CSV)",
        help_text="REDCap's 18 columns, e.g. the registry's REDCap dictionary edited in REDCap",
    )


def _require_analyst(request) -> None:
    """Proposals are the registry's business: anyone but an analyst or admin gets a 404."""
    if not request.user.is_registry_staff:
        raise Http404("No such page")


@login_required
def proposal_list(request):
    """Upload a REDCap data dictionary to propose a version; the proposals so far."""
    _require_analyst(request)
    form = ProposalForm()
    problems = []
    status = 200
    if request.method == "POST":
        form = ProposalForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                proposal = services.store_proposal(
                    upload.read(), upload.name, actor=request.user, request=request
                )
            except ProposalRefused as exc:
                problems = [str(p) for p in exc.problems]
            else:
                messages.success(
                    request, f"Dictionary {proposal.version} is proposed; review it below."
                )
                return redirect(proposal)
    return render(
        request,
        "redcap/proposal_list.html",
        {
            "form": form,
            "problems": problems,
            "proposals": DictionaryProposal.objects.select_related("created_by", "accepted_by"),
            "version": registry.current().dictionary.version,
        },
        status=status,
    )


@login_required
@require_GET
def proposal_detail(request, code):
    """What a proposal changes, its file, and the accept button."""
    _require_analyst(request)
    proposal = get_object_or_404(DictionaryProposal, code=code)
    return render(
        request,
        "redcap/proposal_detail.html",
        {
            "proposal": proposal,
            "version": registry.current().dictionary.version,
            "accepted": proposal.status == ProposalStatus.ACCEPTED,
        },
    )


@login_required
@require_POST
def proposal_accept(request, code):
    _require_analyst(request)
    proposal = get_object_or_404(DictionaryProposal, code=code)
    try:
        path = services.accept_proposal(proposal, actor=request.user, request=request)
    except ProposalRefused as exc:
        messages.error(request, "; ".join(str(p) for p in exc.problems))
    else:
        messages.success(
            request,
            f"Dictionary {proposal.version} was accepted and written to {path}. To put it in "
            f"force, set REGISTRY3D_DICTIONARY={path} and restart the registry.",
        )
    return redirect(proposal)


@login_required
@require_GET
def proposal_download(request, code):
    _require_analyst(request)
    proposal = get_object_or_404(DictionaryProposal, code=code)
    response = HttpResponse(proposal.yaml_text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="registry3d-case-{proposal.version}.yaml"'
    )
    return response
