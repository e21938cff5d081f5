"""Local HTTP fakes of the bank-feed and payout APIs (Plaid, Yodlee, Stripe payouts)."""
