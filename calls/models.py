"""Page-only state of the browser app (the signalling domain lives in invitations)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class MissedCallsSeen(models.Model):
    """When the user last looked at their missed calls: newer missed calls count as unseen.

    One small row per user instead of a flag per call, so marking everything seen is one write.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user} saw missed calls up to {self.seen_at:%Y-%m-%d %H:%M}"
