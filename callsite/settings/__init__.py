"""Settings for callsite.

Everything that differs between the embedded default and production comes from the
environment, with defaults that make `make run` work on a fresh machine:

- ``CALLSITE_ENV``: ``embedded`` (default) or ``production``. Production refuses to start with
  ``DEBUG`` on or without its own ``SECRET_KEY``.
- ``DATABASE_URL``: e.g. ``postgres://user@host:5432/db`` or ``sqlite:////path/file.sqlite3``
  (the same SQLite engine and options as ``SQLITE_PATH``); default is a SQLite file under ``var/``.
- ``DATABASE_POOLER``: ``transaction`` behind PgBouncer in transaction mode.
- ``REDIS_URL``: e.g. ``redis://127.0.0.1:6379/0``; default is the in-memory channel layer.
- ``SECRET_KEY``, ``DEBUG``, ``ALLOWED_HOSTS`` (comma separated), ``CSRF_TRUSTED_ORIGINS``.

The settings live in small modules by theme (env, core, database, channel_layer, security, api,
limits, observability, ice, push); each imports from the others what it builds on.
"""

from .api import *  # noqa: F403
from .channel_layer import *  # noqa: F403
from .core import *  # noqa: F403
from .database import *  # noqa: F403
from .env import *  # noqa: F403
from .ice import *  # noqa: F403
from .limits import *  # noqa: F403
from .observability import *  # noqa: F403
from .push import *  # noqa: F403
from .security import *  # noqa: F403
