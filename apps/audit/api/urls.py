"""Management API routes of apps.audit."""

from django.urls import path

from apps.audit.api.views import (
    AuditEventViewSet,
    AuditExportView,
    AuditReportView,
    AuditVerifyView,
)

app_name = "audit-api"

urlpatterns = [
    path("audit/", AuditEventViewSet.as_view({"get": "list"}), name="event-list"),
    path("audit/export/", AuditExportView.as_view(), name="export"),
    path("audit/report/", AuditReportView.as_view(), name="report"),
    path("audit/verify/", AuditVerifyView.as_view(), name="verify"),
    path(
        "audit/<int:sequence>/",
        AuditEventViewSet.as_view({"get": "retrieve"}),
        name="event-detail",
    ),
]
