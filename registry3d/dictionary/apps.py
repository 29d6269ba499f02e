from django.apps import AppConfig


class DictionaryConfig(AppConfig):
    name = "registry3d.dictionary"
    label = "dictionary"
    verbose_name = "Data dictionary"

    def ready(self):
        from registry3d.dictionary import checks  # noqa: F401  (registers the check)
