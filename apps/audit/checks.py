"""System checks of the audit app (run by `manage.py check` and before serving)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register()
def head_key_usable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """ATP_AUDIT_HEAD_KEY must give an Ed25519 key, or no head can be signed or checked."""
    from apps.audit.heads import HeadKeyError
    from apps.audit.sealing import head_key

    try:
        head_key()
    except HeadKeyError as exc:
        return [
            Error(
                str(exc),
                hint="Set ATP_AUDIT_HEAD_KEY (or ATP_AUDIT_HEAD_KEY_FILE) to an unencrypted "
                "PEM Ed25519 private key or a random secret of 32+ characters.",
                id="audit.E001",
            )
        ]
    return []
