"""Card-processor settlements: a payout (one bank deposit) itemised into the balance
transactions it pays out, and checked to add up to the penny. Pure: no models, no settings."""
