"""Reads of providers and model deployments for the console and the management API."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.providers.models import ModelDeployment, Provider

# Permission scoping is added here, once per entity, so every list narrows the same way.


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.all()


def deployment_list(*, provider: Provider | None = None) -> QuerySet[ModelDeployment]:
    deployments = ModelDeployment.objects.select_related("provider")
    if provider is not None:
        deployments = deployments.filter(provider=provider)
    return deployments
