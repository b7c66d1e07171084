"""What the end-to-end backup tests run inside an ATP process of their own.

    python -m tests.backups.backup_scenario populate   # prints what to check later
    python -m tests.backups.backup_scenario inspect KEY

Both go through the real services (the same code a console or API request runs) and
print one JSON document.
"""

from __future__ import annotations

import json
import os
import sys

CREDENTIAL = "sk-backup-upstream-credential-7Qm2"


def populate() -> dict:
    from apps.audit.services import audit_record
    from apps.providers.models import Provider
    from apps.providers.services import provider_create
    from apps.tenants.services import api_key_create, project_create, tenant_create

    acme = tenant_create(slug="acme", name="Acme Corp")
    tenant_create(slug="globex", name="Globex")
    project = project_create(tenant=acme, slug="web", name="Web shop")
    _, plaintext = api_key_create(tenant=acme, name="prod", project=project)
    provider_create(
        name="upstream-main",
        kind=Provider.Kind.OPENAI_COMPATIBLE,
        base_url="http://127.0.0.1:9/v1",
        api_key=CREDENTIAL,
    )
    for i in range(3):
        audit_record(event_type="tenant.updated", action="update", data={"step": i})
    return {"key": plaintext}


def inspect(key: str) -> dict:
    from apps.audit.models import AuditEvent
    from apps.audit.verify import verify_chain
    from apps.providers.credentials import provider_api_key
    from apps.providers.models import Provider
    from apps.routing.pipeline.auth import authenticate
    from apps.routing.snapshot import build_snapshot
    from apps.tenants.models import Project, Tenant

    info = authenticate(build_snapshot(0), {b"authorization": f"Bearer {key}".encode()})
    result = verify_chain(full=True, record=False)
    return {
        "tenants": sorted(Tenant.objects.values_list("slug", "name")),
        "projects": sorted(Project.objects.values_list("tenant__slug", "slug")),
        "key_tenant": Tenant.objects.get(pk=info.tenant_id).slug,
        "credential": provider_api_key(Provider.objects.get(name="upstream-main")),
        "chain_ok": result.ok,
        "chain_head": result.head_sequence,
        "restores": result.restores,
        "event_types": list(
            AuditEvent.objects.order_by("sequence").values_list("event_type", flat=True)
        ),
    }


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    import django

    django.setup()
    command, *rest = argv
    result = populate() if command == "populate" else inspect(*rest)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
