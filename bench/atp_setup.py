"""Configure a fresh ATP data directory for the benchmark: one provider, one deployment,
one tenant and one API key, through the providers' and tenants' services.

    ATP_DATA_DIR=... .venv/bin/python bench/atp_setup.py --base-url URL --key KEY

Run after `manage.py migrate`. Used by bench/run.py when `manage.py atp_apply` is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="upstream base URL, ending in /v1")
    parser.add_argument("--key", required=True, help="plaintext API key callers will use")
    parser.add_argument("--upstream-key", default="sk-upstream-bench")
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--upstream-model", default="gpt-4o-mini")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    import django

    django.setup()

    from apps.providers.services import deployment_create, provider_create
    from apps.tenants.services import api_key_create, tenant_create

    provider = provider_create(
        name="bench-upstream",
        kind="openai_compatible",
        base_url=args.base_url,
        api_key=args.upstream_key,
    )
    deployment_create(
        provider=provider,
        public_name=args.model,
        upstream_model=args.upstream_model,
        input_price="0.15",
        output_price="0.60",
        capabilities=["chat", "streaming"],
    )
    tenant = tenant_create(slug="bench", name="Benchmark")
    api_key_create(tenant=tenant, name="bench", plaintext=args.key)
    print(f"configured {args.model} -> {args.base_url}")


if __name__ == "__main__":
    main()
