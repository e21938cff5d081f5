"""Every payables write: vendors, approvals, orders and receipts, bills, expense reports and
payment runs. Views, admin, screens and tasks call these and nothing else."""
