from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "registry3d.exports"
    label = "exports"
    verbose_name = "Exports (research and site)"
