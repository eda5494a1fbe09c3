"""The call state machine: every write to a call goes through one of these functions.

- ``rules``: locking, the conditional move, recording, the invite and end rules;
- ``transitions``: what users (and the admin) ask for: invite, add, cancel, quit, end...;
- ``answers``: an invitee's answers: accept, reject, acknowledge;
- ``deadlines``: what happens when a deadline passes (the timer worker calls these);
- ``devices``: what a user's devices coming and going does to their calls and presence.

Callers use the package (``services.accept(...)``); the modules are its own business.
"""

from .answers import accept, acknowledge, reject
from .deadlines import (
    expire,
    expire_caller_offline,
    expire_many,
    expire_participant_offline,
)
from .devices import expire_presence, expire_presence_many, mark_user_offline, mark_user_online
from .locking import lock_users
from .transitions import (
    InviteResult,
    add_invitees,
    cancel,
    end,
    force_end,
    invite,
    quit_call,
)

__all__ = [
    "InviteResult",
    "accept",
    "acknowledge",
    "add_invitees",
    "cancel",
    "end",
    "expire",
    "expire_caller_offline",
    "expire_many",
    "expire_participant_offline",
    "expire_presence",
    "expire_presence_many",
    "force_end",
    "invite",
    "lock_users",
    "mark_user_offline",
    "mark_user_online",
    "quit_call",
    "reject",
]
