"""Production settings come from the environment and refuse unsafe values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 50


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the real settings module in a fresh interpreter with only these variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    clean.pop("DEBUG", None)
    clean.pop("SECRET_KEY", None)
    clean.update(env, DJANGO_SETTINGS_MODULE="callsite.settings")
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from channels.layers import get_channel_layer, InMemoryChannelLayer as M; "
        "from channels_redis.core import RedisChannelLayer as R; "
        "layer = get_channel_layer(); "
        "kind = 'in-memory' if isinstance(layer, M) else 'redis' if isinstance(layer, R) else '?'; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], kind, ','.join(s.ALLOWED_HOSTS))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
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
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "redis",
        "calls.example.org,api.example.org",
    ]


def test_embedded_default_is_sqlite_and_in_memory_layer(tmp_path: Path) -> None:
    result = load_settings(CALLSITE_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    debug, engine, layer, _ = result.stdout.split()
    assert (engine, layer) == ("callsite.db.sqlite3", "in-memory")
