from django.db import models


class DunningAction(models.TextChoices):
    """What a dunning step does besides recording itself on the timeline."""

    EMAIL = "email", "Send an email"
    SUSPEND = "suspend", "Email and pause the customer's subscriptions"
    HAND_OVER = "hand_over", "Email and flag for hand-over to a collection agency"


class DunningTemplate(models.TextChoices):
    """Email templates under templates/receivables/email/<value>.txt."""

    REMINDER = "reminder", "Reminder before due"
    DUE = "due", "Due today"
    OVERDUE = "overdue", "Overdue (past the grace period)"
    FINAL_NOTICE = "final_notice", "Final notice"
    ESCALATION = "escalation", "Escalation"


class CollectionEventOutcome(models.TextChoices):
    DONE = "done", "Done"
    # An email step whose day passed while a later step was already due (after a pause or
    # a missed run): recorded so the timeline is complete, but not sent.
    SKIPPED = "skipped", "Skipped (superseded)"


class PauseKind(models.TextChoices):
    PAUSE = "pause", "Pause"
    PROMISE = "promise", "Promise to pay"


class LateFeeStatus(models.TextChoices):
    CHARGED = "charged", "Charged"
    WAIVED = "waived", "Waived"
