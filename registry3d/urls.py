from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import include, path, reverse

from registry3d.api.api import api
from registry3d.audit import views as audit_views
from registry3d.questionnaires import views as questionnaire_views
from registry3d.sites import views as site_views


def admin_login(request, extra_context=None):
    """Send the admin's log-in to our page, so lock-out and two-factor apply."""
    if request.user.is_authenticated:
        raise PermissionDenied("Only registry administrators may use the admin")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("login"))


admin.site.login = admin_login
admin.site.site_header = "registry3d administration"

urlpatterns = [
    path("", site_views.home, name="home"),
    path("accounts/", include("registry3d.accounts.urls")),
    path("sites/", include("registry3d.sites.urls")),
    path("audit/", audit_views.registry_audit, name="registry_audit"),
    path("audit/disclosures/", audit_views.disclosures, name="disclosures"),
    path("audit/redact/", audit_views.case_redact, name="case_redact"),
    path("dictionary/", include("registry3d.dictionary.urls")),
    path("q/<str:token>/", questionnaire_views.link, name="questionnaire_link"),
    path("questionnaires/", include("registry3d.questionnaires.urls")),
    path("reports/", include("registry3d.reports.urls_national")),
    path("exports/", include("registry3d.exports.urls")),
    path("api/", api.urls),
    path("fhir/", include("registry3d.fhir.urls")),
    path("redcap/", include("registry3d.redcap.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "registry3d.lib.errors.server_error"
