"""The registry's URLs plus views that fail, for the error page tests."""

from django.urls import path

from registry3d.urls import handler500  # noqa: F401 - the registry's own, under test
from registry3d.urls import urlpatterns as registry_urlpatterns


def boom(request):
    raise RuntimeError("secret detail: database password hunter2")


urlpatterns = [
    path("boom/", boom),
    path("api/v1/boom", boom),
    path("fhir/boom", boom),
    *registry_urlpatterns,
]
