from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "registry3d.intake"
    label = "intake"
    verbose_name = "Intake (imports, DICOM, 3D models)"
