from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "registry3d.sites"
    label = "sites"
    verbose_name = "Participant sites"
