"""Price history and the price catalog under /api/v1/."""

from __future__ import annotations

urlpatterns: list = []
