"""Console URLs of the audit log (the management API is in api/urls.py)."""

from django.urls import path

from apps.audit import views
from atp_site.console.routes import object_urls

app_name = "audit"

urlpatterns = [
    path("audit/", views.AuditEventListView.as_view(), name="event-list"),
    path("audit/events/<int:sequence>/", views.AuditEventDetailView.as_view(), name="event-detail"),
    path("audit/verify/", views.VerifyView.as_view(), name="verify"),
    path("audit/export/", views.ExportView.as_view(), name="export"),
    path("audit/reports/", views.ReportView.as_view(), name="report"),
    path("audit/subjects/", views.SubjectExportView.as_view(), name="subject-export"),
    path("audit/subjects/erase/", views.SubjectEraseView.as_view(), name="subject-erase"),
    path("audit/jobs/<uuid:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("audit/jobs/<uuid:pk>/download/", views.JobDownloadView.as_view(), name="job-download"),
    *object_urls(
        "audit/retention",
        "retentionpolicy",
        converter="int",
        list=views.RetentionPolicyListView,
        add=views.RetentionPolicyAddView,
        edit=views.RetentionPolicyEditView,
        delete=views.RetentionPolicyDeleteView,
    ),
    path("operations/jobs/", views.ScheduledRunListView.as_view(), name="scheduledrun-list"),
    path("audit/auditors/", views.AuditorListView.as_view(), name="auditor-list"),
    path(
        "audit/auditors/<int:pk>/<slug:tenant>/revoke/",
        views.AuditorRevokeView.as_view(),
        name="auditor-revoke",
    ),
]
