"""Management API of the declarative configuration file: apply a document, export one.

    POST /api/v1/config/apply   the atp_apply document (YAML or JSON); ?dry_run=true, ?prune=true
    GET  /api/v1/config/export  the atp_export document (?format=yaml|json)

Both call the same code as `manage.py atp_apply` and `atp_export` (atp_site.lib.config_file)
and are open to superusers only: a document reaches every provider, tenant, key, route,
policy and budget at once, including what needs the dedicated permissions (provider
credentials, audit retention), so no narrower permission can cover it.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, parsers, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apps.audit.api.views import FormatIsNotARenderer
from apps.audit.context import acting_as, current_actor
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from atp_site.lib.api_input import JSONParser, StorableTextMixin
from atp_site.lib.config_file import (
    ApplyReport,
    ConfigError,
    apply_config,
    export_config,
    export_config_yaml,
)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
EXPORT_FORMATS = ("yaml", "json")
ACTIONS = ("created", "updated", "replaced", "deleted", "revoked", "unchanged")


class _YAMLParser(parsers.BaseParser):
    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return yaml.safe_load(stream.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise exceptions.ParseError("The document is not UTF-8 text.") from None
        except yaml.YAMLError as exc:
            raise exceptions.ParseError(f"The document is not valid YAML: {exc}") from None


def _yaml_parser(media: str) -> type[parsers.BaseParser]:
    return type(
        "YAMLParser",
        (StorableTextMixin, _YAMLParser),
        {"media_type": media, "__module__": __name__},
    )


# One parser per media type YAML goes by; JSON as everywhere else in the API.
CONFIG_PARSERS = [JSONParser, *(_yaml_parser(media) for media in YAML_TYPES)]


class ConfigApplyParamsSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=False, help_text="Report what would change; change nothing."
    )
    prune = serializers.BooleanField(
        default=False,
        help_text="Also delete what the document's sections no longer list (revoke absent keys).",
    )


class ConfigChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="provider, deployment, tenant, api key, route, ...")
    name = serializers.CharField()
    action = serializers.CharField(help_text=", ".join(ACTIONS))
    fields = serializers.ListField(child=serializers.CharField(), help_text="Fields updated.")
    key = serializers.CharField(
        allow_null=True,
        help_text="The plaintext of an API key the document did not supply, shown this once "
        "(never in a dry run).",
    )


class ConfigApplyReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changed = serializers.BooleanField(help_text="Whether anything was (or would be) changed.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Per action.")
    summary = serializers.CharField(help_text="The last line atp_apply prints.")
    changes = ConfigChangeSerializer(many=True)


def _report_data(report: ApplyReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "changed": report.changed,
        "counts": {action: report.count(action) for action in ACTIONS},
        "summary": report.summary(),
        "changes": [
            {
                "kind": c.kind,
                "name": c.name,
                "action": c.action,
                "fields": list(c.fields),
                "key": c.secret,
            }
            for c in report.changes
        ],
    }


class ConfigApplyView(APIView):
    """Apply a configuration document (docs/configuration.md) as `manage.py atp_apply` does.

    The body is the document, as YAML (`Content-Type: application/yaml`) or JSON. It is
    validated whole, then applied in one transaction; an invalid document is a 400 whose
    message starts with the path of the offending value, and changes nothing. `env:`
    references are read from the server's environment. Each change is audited as the
    caller's, with the configuration file as its source. Superusers only.
    """

    parser_classes = CONFIG_PARSERS

    @extend_schema(
        operation_id="config_apply",
        parameters=[ConfigApplyParamsSerializer],
        request={
            "application/yaml": OpenApiTypes.STR,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={200: ConfigApplyReportSerializer},
    )
    def post(self, request: Request) -> Response:
        params = ConfigApplyParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        document = request.data
        actor = current_actor().but(source=AuditEvent.Source.CONFIG)
        try:
            with acting_as(actor):
                report = apply_config(
                    document,
                    prune=params.validated_data["prune"],
                    dry_run=params.validated_data["dry_run"],
                )
        except ConfigError as exc:
            raise exceptions.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [f"Invalid configuration: {exc}"]}
            ) from None
        return Response(ConfigApplyReportSerializer(_report_data(report)).data)


class ConfigExportView(APIView):
    """The current configuration as `manage.py atp_export` writes it: YAML (with `# NOTE:`
    lines naming the environment variables a secret must come from) or JSON (the document
    alone). Secrets are never in it. Each export is audited. Superusers only."""

    content_negotiation_class = FormatIsNotARenderer
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="config_export",
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(EXPORT_FORMATS), default="yaml", description="yaml or json"
            )
        ],
        responses={
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The document, as atp_apply reads it."
            ),
            (200, "application/json"): OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        fmt = request.query_params.get("format", "yaml").strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise exceptions.ValidationError(
                {"format": [f"Must be one of: {', '.join(EXPORT_FORMATS)}."]}
            )
        body: Any = export_config_yaml() if fmt == "yaml" else export_config()
        # Exports are audited: the document describes every provider, tenant and key.
        audit_record(
            event_type="config.exported",
            action="export",
            resource_type="config",
            data={"output": "api", "format": fmt},
        )
        if fmt == "json":
            return Response(body)
        response = HttpResponse(body, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="atp.yaml"'
        return response
