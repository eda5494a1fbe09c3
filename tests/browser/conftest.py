"""End-to-end fixtures: a real server (Daphne subprocess, file SQLite, in-process timers) and
headless Chromium with fake camera and microphone, one browser context per user/device.

Each test takes fresh users from a pool made at start (``team``), so a test that fails mid-call
cannot leave a user busy for the next one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser-pw"
ROLES = ("alice", "bob", "carol", "dave", "erin")
POOL = 40  # teams of users; one per test (the push specs brought the suite past 16)
RING_SECONDS = 12  # the server's default ring timeout for this suite (the "no answer" path)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


# Three Chromiums sending video on a two-core CI machine can be slow to load a page: wait up to
# 15 s for what must happen (a wrong state still fails, only later).
expect.set_options(timeout=15_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


CREATE_USERS = """
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
U = get_user_model()
pw = make_password({password!r})
U.objects.bulk_create([
    U(username=f"{{role}}{{i}}", first_name=role.title(), last_name=f"T{{i}}", password=pw)
    for i in range(1, {pool} + 1) for role in {roles!r}
])
"""


@dataclass
class Server:
    url: str
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def running_server(extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A Daphne subprocess on a free port, with a fresh file database and the user pool."""
    tmp = Path(tempfile.mkdtemp(prefix="callsite-browser-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "callsite.settings",
            "CALLSITE_VAR_DIR": str(tmp),
            "SQLITE_PATH": str(tmp / "db.sqlite3"),
            "CALLSITE_DEFAULT_TIMEOUT": str(RING_SECONDS),
            "CALLSITE_EMBEDDED_TIMERS": "true",
            "THROTTLE_INVITATIONS": "100000/min",
            "THROTTLE_TOKEN": "100000/min",
            "THROTTLE_PAIR": "100000/min",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
    )
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(
        env,
        "shell",
        "-c",
        CREATE_USERS.format(password=PASSWORD, pool=POOL, roles=ROLES),
    )
    port = _free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--bind", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    srv = Server(url=url, log=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{srv.tail()}")
        time.sleep(0.2)
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="package")
def server() -> Iterator[Server]:
    with running_server() as srv:
        yield srv


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# until it stops, and pytest-asyncio cannot run the async specs that follow while it does.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


_teams = itertools.count(1)


@pytest.fixture
def team() -> dict[str, str]:
    """Fresh usernames for this test: {"alice": "alice7", "bob": "bob7", ...}."""
    i = next(_teams)
    if i > POOL:
        raise RuntimeError("user pool exhausted: raise POOL in tests/browser/conftest.py")
    return {role: f"{role}{i}" for role in ROLES}


@pytest.fixture
def open_as(
    server: Server, browser: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """open_as("bob7") -> a signed-in Page on home, in its own browser context (= device)."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def open_(
        username: str,
        *,
        viewport: dict[str, int] | None = None,
        init_script: str = "",
        permissions: tuple[str, ...] = (),
    ) -> Any:
        ctx = browser.new_context(
            base_url=server.url,
            viewport=viewport or {"width": 1000, "height": 760},
            permissions=["camera", "microphone", *permissions],
        )
        if init_script:
            ctx.add_init_script(init_script)
        ctx.set_default_timeout(15000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.console_messages = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda m, p=page: p.console_messages.append(f"{m.type}: {m.text}"),
        )
        page.on("pageerror", lambda e, p=page: p.console_messages.append(f"pageerror: {e}"))
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("[data-testid=login-submit]")
        page.wait_for_url(server.url + "/")
        # Online = the socket got session.ready, so invitations reach this device.
        page.wait_for_selector("#connection-status[data-state=open]")
        pages.append(page)
        return page

    yield open_
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for i, page in enumerate(pages):
            try:
                shot(page, f"FAILED-{request.node.name}-{i}")
            except Exception:
                pass
            print(f"--- console of page {i} ({page.url}) ---")
            print("\n".join(page.console_messages[-30:]))
        print("--- server log ---")
        print(server.tail())
    for ctx in contexts:
        ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
