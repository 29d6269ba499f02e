from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "registry3d.fhir"
    label = "fhir"
    verbose_name = "HL7 FHIR"
