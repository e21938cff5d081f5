from django.db import models


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class PaymentMethodType(models.TextChoices):
    CREDIT_CARD = "credit_card", "Credit card"
    ACH = "ach", "ACH"
    WIRE_TRANSFER = "wire_transfer", "Wire transfer"
    CRYPTOCURRENCY = "cryptocurrency", "Cryptocurrency"
    CHECK = "check", "Check"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown (processor did not answer)"
    REFUNDED = "refunded", "Refunded"


class PriceType(models.TextChoices):
    FLAT = "flat", "Flat fee"
    PER_UNIT = "per_unit", "Per unit"
    TIERED_GRADUATED = "tiered_graduated", "Tiered (graduated)"
    TIERED_VOLUME = "tiered_volume", "Tiered (volume)"
    PACKAGE = "package", "Package"


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    QUARTER = "quarter", "Quarterly"
    YEAR = "year", "Yearly"


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum"
    MAX = "max", "Maximum"
    LAST = "last", "Last value"
    UNIQUE = "unique", "Unique count"


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


class AllocationOrder(models.TextChoices):
    """Which open invoices a payment without allocations settles first."""

    OLDEST_DUE = "oldest_due", "Oldest due date first"
    NEWEST_DUE = "newest_due", "Newest due date first"
    SMALLEST = "smallest", "Smallest amount due first"
    LARGEST = "largest", "Largest amount due first"
