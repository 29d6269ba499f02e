from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "registry3d.cases"
    label = "cases"
    verbose_name = "Cases"
