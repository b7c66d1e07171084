"""Management API routes of apps.audit."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.audit.api.views import (
    AuditEventViewSet,
    AuditExportView,
    AuditReportView,
    AuditVerifyView,
    ExchangeViewSet,
    RetentionPolicyViewSet,
    ScheduledRunViewSet,
    SubjectEraseView,
    SubjectExportView,
)

app_name = "audit-api"

router = SimpleRouter()
router.register("exchanges", ExchangeViewSet, basename="exchange")
router.register("retention-policies", RetentionPolicyViewSet, basename="retention-policy")

urlpatterns = [
    path("audit/", AuditEventViewSet.as_view({"get": "list"}), name="event-list"),
    path("audit/export/", AuditExportView.as_view(), name="export"),
    path("audit/report/", AuditReportView.as_view(), name="report"),
    path("audit/verify/", AuditVerifyView.as_view(), name="verify"),
    path("privacy/subjects/export/", SubjectExportView.as_view(), name="subject-export"),
    path("privacy/subjects/erase/", SubjectEraseView.as_view(), name="subject-erase"),
    path(
        "audit/<int:sequence>/",
        AuditEventViewSet.as_view({"get": "retrieve"}),
        name="event-detail",
    ),
    path(
        "jobs/scheduled/",
        ScheduledRunViewSet.as_view({"get": "list"}),
        name="scheduled-run-list",
    ),
    *router.urls,
]
