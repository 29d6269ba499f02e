from django.urls import path

from registry3d.dictionary import views

urlpatterns = [
    path("", views.dictionary_page, name="dictionary"),
    path("form/", views.form_preview, name="dictionary_form"),
    path("download/<str:filename>", views.dictionary_download, name="dictionary_download"),
]
