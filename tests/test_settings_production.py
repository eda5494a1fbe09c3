"""Production settings come from the environment and refuse unsafe values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 50


def run_django(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``django.setup()`` in a fresh interpreter, the real settings module
    reading only these of the variables that choose the database, Redis, DEBUG and the key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_URL"))}
    clean.pop("DEBUG", None)
    clean.pop("SECRET_KEY", None)
    clean.update(env, DJANGO_SETTINGS_MODULE="callsite.settings")
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the real settings module with only these variables; print what they chose."""
    return run_django(
        "from django.conf import settings as s; "
        "from channels.layers import get_channel_layer, InMemoryChannelLayer as M; "
        "from channels_redis.core import RedisChannelLayer as R; "
        "from channels_redis.pubsub import RedisPubSubChannelLayer as P; "
        "kind = lambda layer: ('in-memory' if isinstance(layer, M) else 'redis'"
        " if isinstance(layer, R) else 'redis-pubsub' if isinstance(layer, P) else '?'); "
        "aliases = ('default', s.WORKER_CHANNEL_LAYER); "
        "layers = '+'.join(kind(get_channel_layer(a)) for a in aliases); "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], layers, ','.join(s.ALLOWED_HOSTS))",
        **env,
    )


def test_production_refuses_debug_on() -> None:
    result = load_settings(CALLSITE_ENV="production", DEBUG="1", SECRET_KEY=GOOD_KEY)
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_production_refuses_the_default_secret_key() -> None:
    result = load_settings(CALLSITE_ENV="production", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_reads_database_redis_and_hosts_from_the_environment() -> None:
    result = load_settings(
        CALLSITE_ENV="production",
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        REDIS_URL="redis://127.0.0.1:6379/0",
        ALLOWED_HOSTS="calls.example.org,api.example.org",
    )
    assert result.returncode == 0, result.stderr
    # Sockets' events through PubSub, the workers' channels through the core layer, which keeps
    # their messages in Redis while a worker restarts.
    assert result.stdout.split() == [
        "False",
        "callsite.db.postgresql",
        "redis-pubsub+redis",
        "calls.example.org,api.example.org",
    ]


def test_production_can_put_the_sockets_back_on_the_core_layer() -> None:
    env = {
        "CALLSITE_ENV": "production",
        "SECRET_KEY": GOOD_KEY,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = load_settings(**env, CHANNEL_LAYER_BACKEND="core")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2] == "redis+redis"

    result = load_settings(**env, CHANNEL_LAYER_BACKEND="kafka")
    assert result.returncode != 0
    assert "CHANNEL_LAYER_BACKEND must be 'pubsub' or 'core', not 'kafka'" in result.stderr


def test_embedded_default_is_sqlite_and_in_memory_layer(tmp_path: Path) -> None:
    result = load_settings(CALLSITE_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    debug, engine, layer, _ = result.stdout.split()
    # One in-memory layer for the sockets and the in-process workers.
    assert (engine, layer) == ("callsite.db.sqlite3", "in-memory+in-memory")


def run_on_postgres(code: str, **env: str) -> list[str]:
    """``run_django`` on the test PostgreSQL server; the words ``code`` printed."""
    url = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")
    result = run_django(code, DATABASE_URL=url, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_transaction_pooler_gets_no_server_side_cursors_or_prepared_statements() -> None:
    code = (
        "from django.conf import settings as s; "
        "from django.db import connection; d = s.DATABASES['default']; "
        "print(d['DISABLE_SERVER_SIDE_CURSORS'], d['OPTIONS']['prepare_threshold']); "
        "connection.ensure_connection(); print(connection.connection.prepare_threshold)"
    )
    assert run_on_postgres(code, DATABASE_POOLER="transaction") == ["True", "None", "None"]


# A statement run 6 times on one connection, then whether PostgreSQL holds it prepared and how
# psycopg bound its parameter (a ClientCursor quotes it into the statement in Python).
PREPARED = (
    "import psycopg; from django.db import connection; "
    "cursor = connection.cursor(); "
    "[cursor.execute('SELECT %s::int + 1', [n]) for n in range(6)]; "
    "cursor.execute('SELECT count(*) FROM pg_prepared_statements'); "
    "print(cursor.fetchone()[0] > 0, isinstance(cursor.cursor, psycopg.ClientCursor))"
)


def test_postgresql_binds_parameters_server_side_and_prepares_repeated_statements() -> None:
    """Parameters travel beside the statement, and a statement run 5 times is prepared, so
    PostgreSQL stops parsing and planning every invitation's statements (issue 9)."""
    assert run_on_postgres(PREPARED) == ["True", "False"]
    # CALLSITE_DB_SERVER_BINDING=0 restores Django's default: quoted in Python, never prepared.
    assert run_on_postgres(PREPARED, CALLSITE_DB_SERVER_BINDING="0") == ["False", "True"]
