from django.urls import path

from registry3d.reports import national_views

urlpatterns = [
    path("national/", national_views.national_report, name="national_report"),
    path("national/report.csv", national_views.national_report_csv, name="national_report_csv"),
    path("national/report.pdf", national_views.national_report_pdf, name="national_report_pdf"),
]
