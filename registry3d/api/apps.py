from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "registry3d.api"
    label = "api"
    verbose_name = "REST API"
