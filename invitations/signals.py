"""A password change signs the user out everywhere: every API token goes (API.md), and with it
every socket (closed with 4401 by realtime/revocation.py, which also closes the sockets of browser
sessions, whose session hash no longer matches)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save

from . import tokens


def _password_changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "password" not in update_fields:
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is not None and old != instance.password:
        # In the saving transaction: if the save rolls back, so does this.
        tokens.revoke_all(user=instance)


def connect() -> None:
    pre_save.connect(
        _password_changed, sender=get_user_model(), dispatch_uid="invitations.password_changed"
    )
