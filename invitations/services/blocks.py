"""The block list (API.md "REST"): a blocked user's invitations answer as if the callee were busy,
so the callee is not revealed (services/rules.py consults ``selectors.availability``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from .. import validation
from ..errors import CallError, validation_error
from ..models import Block


def _target(blocker: User, username: str) -> User:
    if not validation.storable(username):
        raise CallError("not_found", "No such user.")
    if username == blocker.get_username():
        raise validation_error("username", "You cannot block yourself.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CallError("not_found", "No such user.")
    return user


def block(*, blocker: User, username: str) -> tuple[Block, bool]:
    """Block ``username``; returns the row and whether it is new."""
    return Block.objects.get_or_create(blocker=blocker, blocked=_target(blocker, username))


def unblock(*, blocker: User, username: str) -> None:
    Block.objects.filter(blocker=blocker, blocked=_target(blocker, username)).delete()
