from django.urls import path

from registry3d.redcap import api, views

urlpatterns = [
    path("api/", api.redcap_api, name="redcap_api"),
    path("proposals/", views.proposal_list, name="redcap_proposals"),
    path("proposals/<uuid:code>/", views.proposal_detail, name="redcap_proposal"),
    path("proposals/<uuid:code>/accept", views.proposal_accept, name="redcap_proposal_accept"),
    path(
        "proposals/<uuid:code>/case.yaml", views.proposal_download, name="redcap_proposal_download"
    ),
]
