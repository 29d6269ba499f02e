from django.urls import path

from registry3d.questionnaires import views

urlpatterns = [
    path("", views.mine, name="questionnaire_mine"),
    path("<uuid:code>/", views.mine_answer, name="questionnaire_mine_answer"),
]
