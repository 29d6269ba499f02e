from django.urls import path

from registry3d.exports import views

urlpatterns = [
    path("", views.research_exports, name="research_exports"),
    path("<uuid:code>/", views.export_detail, name="export_detail"),
    path("<uuid:code>/download/", views.export_download, name="export_download"),
]
