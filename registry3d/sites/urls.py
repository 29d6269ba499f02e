from django.urls import path

from registry3d.audit import views as audit_views
from registry3d.cases import views as case_views
from registry3d.exports import views as export_views
from registry3d.intake import views as intake_views
from registry3d.questionnaires import views as questionnaire_views
from registry3d.reports import pdf_views
from registry3d.reports import views as report_views
from registry3d.sites import views

urlpatterns = [
    path("switch/", views.site_switch, name="site_switch"),
    path("<str:code>/", views.site_home, name="site_home"),
    path("<str:code>/members/", views.site_members, name="site_members"),
    path("<str:code>/members/<uuid:member>/role/", views.member_role, name="member_role"),
    path("<str:code>/members/<uuid:member>/remove/", views.member_remove, name="member_remove"),
    path("<str:code>/tokens/", views.site_tokens, name="site_tokens"),
    path("<str:code>/tokens/<uuid:token_code>/revoke/", views.token_revoke, name="token_revoke"),
    path("<str:code>/audit/", audit_views.site_audit, name="site_audit"),
    path("<str:code>/settings/", views.site_settings, name="site_settings"),
    path("<str:code>/export/", export_views.site_export, name="site_export"),
    path("<str:code>/imports/", intake_views.import_list, name="import_list"),
    path(
        "<str:code>/imports/<uuid:import_code>/", intake_views.import_detail, name="import_detail"
    ),
    path(
        "<str:code>/imports/<uuid:import_code>/write/",
        intake_views.import_write,
        name="import_write",
    ),
    path(
        "<str:code>/imports/<uuid:import_code>/problems.csv",
        intake_views.import_problems,
        name="import_problems",
    ),
    path("<str:code>/cases/", case_views.case_list, name="case_list"),
    path("<str:code>/dashboard/", report_views.site_dashboard, name="site_dashboard"),
    path("<str:code>/dashboard/report.pdf", pdf_views.site_report_pdf, name="site_report_pdf"),
    path("<str:code>/cases/new/", case_views.case_edit, name="case_new"),
    path("<str:code>/cases/check/", case_views.case_check, name="case_check"),
    path("<str:code>/cases/<str:case_uid>/", case_views.case_detail, name="case_detail"),
    path("<str:code>/cases/<str:case_uid>/edit/", case_views.case_edit, name="case_edit"),
    path(
        "<str:code>/cases/<str:case_uid>/withdraw/",
        case_views.case_withdraw,
        name="case_withdraw",
    ),
    path(
        "<str:code>/cases/<str:case_uid>/questionnaire/",
        questionnaire_views.case_action,
        name="case_questionnaire",
    ),
    path(
        "<str:code>/printers/<uuid:printer>/active/",
        views.printer_active,
        name="printer_active",
    ),
]
