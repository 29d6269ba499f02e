from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "registry3d.reports"
    label = "reports"
    verbose_name = "Reports and benchmarks"
