"""Management API routes of apps.audit."""

from django.urls import path

from apps.audit.api.views import AuditVerifyView

app_name = "audit-api"

urlpatterns = [path("audit/verify/", AuditVerifyView.as_view(), name="verify")]
