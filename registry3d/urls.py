from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path

from registry3d.api.api import api
from registry3d.audit import views as audit_views
from registry3d.sites import views as site_views

# The admin logs in through our page, so lock-out and two-factor apply.
admin.site.login = login_required(admin.site.login)
admin.site.site_header = "registry3d administration"

urlpatterns = [
    path("", site_views.home, name="home"),
    path("accounts/", include("registry3d.accounts.urls")),
    path("sites/", include("registry3d.sites.urls")),
    path("audit/", audit_views.registry_audit, name="registry_audit"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
