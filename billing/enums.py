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
