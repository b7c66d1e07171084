"""`python -m tests.oidc_provider --port N --client-id ID --client-secret S --redirect-uri U
--post-logout-redirect-uri U` with OP_DATA_DIR set: migrate, register the client, serve."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", action="append", default=[])
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[])
    args = parser.parse_args()

    data = Path(os.environ["OP_DATA_DIR"])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (data / "op_key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.environ.setdefault("OP_ISSUER", f"http://127.0.0.1:{args.port}/o")
    os.environ.setdefault("OP_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from oauth2_provider.models import Application

    Application.objects.update_or_create(
        client_id=args.client_id,
        defaults={
            "name": "ATP",
            "client_secret": args.client_secret,
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": " ".join(args.redirect_uri),
            "post_logout_redirect_uris": " ".join(args.post_logout_redirect_uri),
            "skip_authorization": True,
            "algorithm": Application.RS256_ALGORITHM,
        },
    )

    import uvicorn
    from django.core.asgi import get_asgi_application

    uvicorn.run(
        get_asgi_application(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
