"""Admin screens for reconciliation exceptions (filled in by the exceptions work)."""
