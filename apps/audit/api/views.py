"""Management API of the audit log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.verify import verify_chain


class AuditVerifyView(APIView):
    """Walk the audit chain and report OK with the head, or the first broken link."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(verify_chain().as_dict())
