"""Real processes for the operations tests: servers, workers, nginx, coturn, and their logs.

Everything binds to 127.0.0.1 on free ports and is stopped by the test that started it (by
process group, so a server's children go too).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 60, alive: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while True:
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"process exited with {alive.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise AssertionError(f"nothing listened on {port} within {timeout} s") from None
            time.sleep(0.1)


class Processes:
    """Named child processes, each with a log file of its own."""

    def __init__(self, env: dict[str, str], logs: Path | None = None) -> None:
        self.env = env
        self.logs = logs or Path(tempfile.mkdtemp(prefix="callsite-ops-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_manage(self, name: str, *args: str) -> None:
        self.start(name, [sys.executable, "manage.py", *args])

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def send_signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def wait(self, name: str, timeout: float) -> int | None:
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name, signal.SIGTERM, timeout=12)
            except Exception:  # keep stopping the others
                pass


def create_users(procs: Processes, names: Sequence[str]) -> dict[str, str]:
    """Users with API tokens in the processes' database: {username: token}.

    Without passwords: the tests authenticate with tokens, and hashing a password with the real
    settings' hasher takes a good part of a second each on a busy machine.
    """
    out = procs.manage(
        "shell",
        "-c",
        "import json\n"
        "from django.contrib.auth.models import User\n"
        "from invitations import tokens\n"
        f"names = {list(names)!r}\n"
        "users = [User.objects.create_user(n) for n in names]\n"
        "print(json.dumps({u.username: tokens.issue(user=u)[0] for u in users}))",
    )
    return json.loads(out.strip().splitlines()[-1])


@contextmanager
def postgres_database(base_url: str = PG_URL) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``base_url``; dropped afterwards."""
    import psycopg

    parts = urlsplit(base_url)
    name = f"callsite_ops_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis_prefix(prefix: str, url: str = REDIS_URL) -> None:
    import redis

    r = redis.Redis.from_url(url)
    for key in r.scan_iter(f"{prefix}*", count=1000):
        r.delete(key)


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one's, on the real settings module."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="callsite.settings", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env
