"""Celery tasks of reconciliation feeds (reconciliation.tasks imports them for Celery)."""
