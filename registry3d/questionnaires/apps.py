from django.apps import AppConfig


class QuestionnairesConfig(AppConfig):
    name = "registry3d.questionnaires"
    label = "questionnaires"
    verbose_name = "Physician questionnaires"
