"""Console URLs of the audit log (the management API is in api/urls.py)."""

from django.urls import path

from apps.audit import views

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
    path("audit/retention/", views.RetentionPolicyListView.as_view(), name="retentionpolicy-list"),
    path(
        "audit/retention/add/", views.RetentionPolicyAddView.as_view(), name="retentionpolicy-add"
    ),
    path(
        "audit/retention/<int:pk>/edit/",
        views.RetentionPolicyEditView.as_view(),
        name="retentionpolicy-edit",
    ),
    path(
        "audit/retention/<int:pk>/delete/",
        views.RetentionPolicyDeleteView.as_view(),
        name="retentionpolicy-delete",
    ),
    path("audit/auditors/", views.AuditorListView.as_view(), name="auditor-list"),
    path(
        "audit/auditors/<int:pk>/<slug:tenant>/revoke/",
        views.AuditorRevokeView.as_view(),
        name="auditor-revoke",
    ),
]
