from django.db import models


class AgingBucket(models.TextChoices):
    CURRENT = "current", "Current"
    DAYS_1_30 = "1-30", "1-30 days"
    DAYS_31_60 = "31-60", "31-60 days"
    DAYS_61_90 = "61-90", "61-90 days"
    DAYS_90_PLUS = "90+", "Over 90 days"
