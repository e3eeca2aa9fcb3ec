"""The Django project: env-driven settings, URLs, ASGI (Channels) and the Celery app."""

from .celery import app as celery_app

__all__ = ["celery_app"]
