"""Safe defaults: the embedded demo does not listen beyond loopback by accident, demo users are
never seeded under production, and production speaks HTTPS only (HSTS, redirect, proxy header)
with a CSP; `check --deploy` has nothing to say about it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from invitations.management.commands.serve import bind_refusal

ROOT = Path(__file__).resolve().parent.parent.parent


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command of this project in a fresh interpreter with only these variables set."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "CALLSITE_"))
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="callsite.settings", CALLSITE_VAR_DIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def production(**extra: str) -> dict[str, str]:
    return {"CALLSITE_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(50), **extra}


def test_check_deploy_under_production_settings_prints_no_warnings(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **production()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


PROBE = """
import django; django.setup()
from django.test import Client
c = Client()
plain = c.get("/accounts/login/")
tls = c.get("/accounts/login/", secure=True)
proxied = c.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
print(plain.status_code, plain.get("Location"))
print(tls.status_code, proxied.status_code)
print(tls.get("Strict-Transport-Security"))
print(tls.get("Content-Security-Policy"))
"""


def test_production_redirects_to_https_and_sends_hsts_and_a_csp(tmp_path: Path) -> None:
    run(["manage.py", "migrate", "-v", "0"], tmp_path, **production())
    result = run(
        ["-c", PROBE],
        tmp_path,
        **production(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https", ALLOWED_HOSTS="testserver"),
    )
    assert result.returncode == 0, result.stderr
    plain, served, hsts, csp = result.stdout.strip().splitlines()
    assert plain == "301 https://testserver/accounts/login/"
    assert served == "200 200"  # over TLS, and through the proxy that says so
    assert hsts == "max-age=31536000; includeSubDomains"
    assert csp == "default-src 'self'"


@pytest.mark.django_db
def test_pages_carry_the_csp_in_the_embedded_default_too(client: Any) -> None:
    assert client.get("/accounts/login/")["Content-Security-Policy"] == "default-src 'self'"


def test_seed_demo_refuses_under_production(tmp_path: Path) -> None:
    run(["manage.py", "migrate", "-v", "0"], tmp_path, **production())
    result = run(["manage.py", "seed_demo"], tmp_path, **production())
    assert result.returncode != 0
    assert "Refusing to create demo users" in result.stderr


def test_serve_refuses_a_public_bind_with_the_embedded_settings(tmp_path: Path) -> None:
    result = run(["manage.py", "serve", "--bind", "0.0.0.0", "--port", "0"], tmp_path)
    assert result.returncode != 0
    assert "Refusing to listen on 0.0.0.0" in result.stderr
    assert "--insecure-demo" in result.stderr


@pytest.mark.parametrize(
    "bind, production, demo, refused",
    [
        ("127.0.0.1", False, False, False),
        ("::1", False, False, False),
        ("localhost", False, False, False),
        ("0.0.0.0", False, False, True),
        ("::", False, False, True),
        ("192.168.1.20", False, False, True),
        ("example.org", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
    ],
)
def test_which_binds_the_embedded_default_allows(
    bind: str, production: bool, demo: bool, refused: bool
) -> None:
    assert (bind_refusal(bind, production=production, insecure_demo=demo) is not None) is refused
