"""ATP: the Django project (settings, URLs, ASGI and Celery apps)."""

from atp_site.celery import app as celery_app

__all__ = ["celery_app"]
