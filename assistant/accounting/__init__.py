"""What each request cost and who may spend more: the ledger, prices and energy, limits."""
