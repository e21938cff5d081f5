"""Admin screens for reconciliation payouts (filled in by the payouts work)."""
