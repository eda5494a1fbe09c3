"""Where this process is in its life: serving, draining (shutting down), or stopped.

Set by the graceful shutdown of ``manage.py serve`` (callsite/graceful.py) and read by code that
must behave differently then, without importing Daphne or Twisted:

- ``draining()``: a shutdown started. Sockets closing now are moving to another process, so
  their devices and calls stay as they are in the database (they resume via session.ready).
- ``publishing_allowed()``: false once the event loop is stopping; a publish handed to it
  then would never run, and the thread waiting for it would never return.
"""

from __future__ import annotations

_draining = False
_stopped = False


def draining() -> bool:
    return _draining


def publishing_allowed() -> bool:
    return not _stopped


def start_draining() -> None:
    global _draining
    _draining = True


def mark_stopped() -> None:
    global _stopped
    _stopped = True
