from django.apps import AppConfig


class RedcapConfig(AppConfig):
    name = "registry3d.redcap"
    label = "redcap"
    verbose_name = "REDCap compatibility"
