from django.urls import path

from registry3d.fhir import views

urlpatterns = [
    path("metadata", views.metadata, name="fhir_metadata"),
    path("Questionnaire/<str:name>", views.questionnaire_read, name="fhir_questionnaire"),
    path("QuestionnaireResponse", views.response_create, name="fhir_response_create"),
]
