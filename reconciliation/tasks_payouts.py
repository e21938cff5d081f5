"""Celery tasks of reconciliation payouts (reconciliation.tasks imports them for Celery)."""
