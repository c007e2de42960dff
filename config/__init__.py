"""Django project package: settings, URLs, Celery app and embedded services."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
