"""Which user an OpenID provider's subject signs in as."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OidcIdentity(models.Model):
    """The link between a user and a subject (`sub`) of an issuer.

    Users signing in through OIDC are found by this link only, never by a name or an email
    address a provider sends: a provider account called "admin" must not become the local
    break-glass administrator.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidc_identity_unique_sub")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
