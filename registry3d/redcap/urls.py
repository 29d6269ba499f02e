from django.urls import path

from registry3d.redcap import api

urlpatterns = [
    path("api/", api.redcap_api, name="redcap_api"),
]
