"""Admin screens for reconciliation feeds (filled in by the feeds work)."""
