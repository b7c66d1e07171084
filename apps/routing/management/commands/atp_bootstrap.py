"""Prepare a fresh ATP to run: an admin account, the offline simulator, a demo tenant and key.

Idempotent: run it on every start. Real providers are added when their usual
environment variables are present (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY,
OLLAMA_HOST); their keys stay in the environment (`env:NAME`), never in the database.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.audit.context import AuditActor, acting_as
from apps.tenants.keys import generate_api_key
from atp_site.lib.config_file import apply_config

SIMULATOR_MODELS: list[dict[str, Any]] = [
    {
        "name": "sim-fast",
        "upstream": "sim-fast",
        "aliases": ["gpt-4o-mini"],
        "prices": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
        "context_window": 128000,
        "max_output_tokens": 16384,
        "capabilities": ["chat", "tools", "vision", "json", "streaming"],
        "quality": 0.6,
    },
    {
        "name": "sim-smart",
        "upstream": "sim-smart",
        "aliases": ["gpt-4o"],
        "prices": {"input": 2.50, "output": 10.00, "cached_input": 1.25},
        "context_window": 128000,
        "max_output_tokens": 16384,
        "capabilities": ["chat", "tools", "vision", "json", "streaming"],
        "quality": 0.9,
    },
    {
        "name": "sim-embed",
        "upstream": "sim-embed",
        "aliases": ["text-embedding-3-small"],
        "prices": {"input": 0.02, "output": 0},
        "context_window": 8191,
        "capabilities": ["embeddings"],
        "quality": 0.7,
    },
]

REAL_PROVIDERS: list[tuple[str, dict[str, Any]]] = [
    (
        "OPENAI_API_KEY",
        {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": "env:OPENAI_API_KEY",
            "models": [
                {
                    "name": "openai/gpt-4o-mini",
                    "upstream": "gpt-4o-mini",
                    "prices": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
                    "capabilities": ["chat", "tools", "vision", "json", "streaming"],
                    "quality": 0.7,
                },
                {
                    "name": "openai/gpt-4o",
                    "upstream": "gpt-4o",
                    "prices": {"input": 2.50, "output": 10.0, "cached_input": 1.25},
                    "capabilities": ["chat", "tools", "vision", "json", "streaming"],
                    "quality": 0.9,
                },
                {
                    "name": "openai/text-embedding-3-small",
                    "upstream": "text-embedding-3-small",
                    "prices": {"input": 0.02, "output": 0},
                    "capabilities": ["embeddings"],
                    "context_window": 8191,
                },
            ],
        },
    ),
    (
        "ANTHROPIC_API_KEY",
        {
            "name": "anthropic",
            "kind": "anthropic",
            "base_url": "https://api.anthropic.com",
            "api_key": "env:ANTHROPIC_API_KEY",
            "models": [
                {
                    "name": "anthropic/claude-3-5-haiku",
                    "upstream": "claude-3-5-haiku-latest",
                    "prices": {
                        "input": 0.80,
                        "output": 4.0,
                        "cached_input": 0.08,
                        "cache_write": 1.0,
                    },
                    "context_window": 200000,
                    "max_output_tokens": 8192,
                    "capabilities": ["chat", "tools", "vision", "streaming"],
                    "quality": 0.7,
                },
                {
                    "name": "anthropic/claude-sonnet-4",
                    "upstream": "claude-sonnet-4-20250514",
                    "prices": {
                        "input": 3.0,
                        "output": 15.0,
                        "cached_input": 0.30,
                        "cache_write": 3.75,
                    },
                    "context_window": 200000,
                    "max_output_tokens": 8192,
                    "capabilities": ["chat", "tools", "vision", "streaming"],
                    "quality": 0.92,
                },
            ],
        },
    ),
    (
        "GEMINI_API_KEY",
        {
            "name": "gemini",
            "kind": "gemini",
            "base_url": "https://generativelanguage.googleapis.com",
            "api_key": "env:GEMINI_API_KEY",
            "models": [
                {
                    "name": "gemini/gemini-2.0-flash",
                    "upstream": "gemini-2.0-flash",
                    "prices": {"input": 0.10, "output": 0.40},
                    "context_window": 1048576,
                    "capabilities": ["chat", "tools", "vision", "json", "streaming"],
                    "quality": 0.75,
                },
                {
                    "name": "gemini/text-embedding-004",
                    "upstream": "text-embedding-004",
                    "prices": {"input": 0, "output": 0},
                    "capabilities": ["embeddings"],
                    "context_window": 2048,
                },
            ],
        },
    ),
]


def _read_or_create(path: Path, make) -> tuple[str, bool]:
    if path.exists():
        return path.read_text().strip(), False
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value, True


class Command(BaseCommand):
    help = "Create the admin account, simulator provider, demo tenant and demo API key if missing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing but errors.")

    def handle(self, *args, quiet: bool = False, **options) -> None:
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)

        user_model = get_user_model()
        password_file = data_dir / "admin_password"
        if not user_model.objects.filter(is_superuser=True).exists():
            password, _ = _read_or_create(password_file, lambda: secrets.token_urlsafe(12))
            user_model.objects.create_superuser("admin", "admin@localhost", password)
        password = password_file.read_text().strip() if password_file.exists() else None

        demo_key, _ = _read_or_create(data_dir / "demo_api_key", generate_api_key)
        providers = [
            {
                "name": "simulator",
                "kind": "simulator",
                "region": "local",
                # Realistic pacing so streams look like a real model's in the demo.
                "options": {"ttft_ms": 150, "tokens_per_second": 150},
                "models": SIMULATOR_MODELS,
            }
        ]
        for variable, provider in REAL_PROVIDERS:
            if os.environ.get(variable):
                providers.append(provider)
        ollama = os.environ.get("OLLAMA_HOST")
        if ollama:
            base = ollama if ollama.startswith("http") else f"http://{ollama}"
            providers.append(
                {
                    "name": "ollama",
                    "kind": "ollama",
                    "base_url": base,
                    "models": [
                        {
                            "name": f"ollama/{name}",
                            "upstream": name,
                            "prices": {"input": 0, "output": 0},
                            "capabilities": ["chat", "tools", "streaming", "json"],
                            "quality": 0.5,
                        }
                        for name in os.environ.get("ATP_OLLAMA_MODELS", "llama3.2").split(",")
                        if name.strip()
                    ]
                    + [
                        {
                            "name": "ollama/nomic-embed-text",
                            "upstream": "nomic-embed-text",
                            "prices": {"input": 0, "output": 0},
                            "capabilities": ["embeddings"],
                        }
                    ],
                }
            )
        config = {
            "version": 1,
            "providers": providers,
            "tenants": [
                {
                    "slug": "demo",
                    "name": "Demo tenant",
                    "api_keys": [{"name": "demo", "key": demo_key}],
                }
            ],
        }
        with acting_as(AuditActor(actor="cli:atp_bootstrap", source="cli")):
            apply_config(config)

        if quiet:
            return
        host = os.environ.get("ATP_HOST", "127.0.0.1")
        port = os.environ.get("ATP_PORT", "8000")
        base = f"http://{host}:{port}"
        out = self.stdout.write
        out("")
        out(f"ATP is starting on {base}")
        shown = password or "(unchanged: set with manage.py changepassword admin)"
        out(f"  console:       {base}/   sign in as admin, password: {shown}")
        out(f"  Django admin:  {base}/admin/ (raw data, same account)")
        out(f"  API docs:      {base}/api/v1/docs/")
        out(f"  demo API key:  {demo_key}")
        out(f"  models:        {', '.join(m['name'] for p in providers for m in p['models'])}")
        out("  routes:        auto, atp/fast, atp/balanced, atp/high (ATP chooses the model)")
        out(f"  metrics:       {base}/metrics")
        out(f"  streaming:     {base.replace('http', 'ws', 1)}/v1/realtime (WebSocket)")
        out("  try it:")
        out(f"    curl {base}/v1/chat/completions -H 'Authorization: Bearer {demo_key}' \\")
        out("      -H 'Content-Type: application/json' \\")
        out(
            '      -d \'{"model": "sim-fast", "messages": [{"role": "user", "content": "Hello"}]}\''
        )
        out("")
