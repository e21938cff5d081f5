"""The customer-facing pages: the hosted invoice page a pay link opens (no login)."""
