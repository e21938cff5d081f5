"""Admin screens for reconciliation close (filled in by the close work)."""
