"""`GET /api/v1/usage`: spend and tokens from the rollups, filtered and grouped."""

from __future__ import annotations

urlpatterns: list = []
