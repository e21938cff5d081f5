"""Every write of billing state goes through a function here (STYLE.md)."""
