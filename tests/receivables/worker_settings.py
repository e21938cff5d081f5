"""Settings of the real Celery workers in test_collections_faults.py: the project's, with the
collections run in chunks of two invoices, so that a run can die between two chunks."""

from core.settings import *  # noqa: F403

RECEIVABLES_COLLECTIONS_CHUNK_SIZE = 2
