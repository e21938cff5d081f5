"""Celery tasks of reconciliation exceptions (reconciliation.tasks imports them for Celery)."""
