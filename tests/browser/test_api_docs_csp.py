"""The Swagger UI at /api/docs/ works under production's CSP, and only that page gets more.

A production server (its own process, file SQLite), real Chromium: the page must render with no
CSP violation reported, and every other page keeps exactly ``default-src 'self'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import Processes, base_env, free_port, wait_listening

pytestmark = pytest.mark.browser

SITE_CSP = "default-src 'self'"

# Reported by the page itself for every blocked style, script, image or connection.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs-csp")
    port = free_port()
    env = base_env(
        CALLSITE_ENV="production",
        SECRET_KEY="s" * 50,
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_COOKIES="0",
        SECURE_SSL_REDIRECT="0",  # plain HTTP here; behind nginx TLS ends at the proxy
        CALLSITE_VAR_DIR=str(tmp),
        SQLITE_PATH=str(tmp / "db.sqlite3"),
    )
    procs = Processes(env, Path(tmp))
    procs.manage("migrate", "--noinput", "-v", "0")
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
        yield f"http://127.0.0.1:{port}"
    finally:
        procs.stop_all()


def directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_the_docs_page_renders_under_production_csp_with_no_violation(
    production_server: str, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(COLLECT_VIOLATIONS)
    try:
        response = page.goto(f"{production_server}/api/docs/", wait_until="networkidle")
        assert response is not None and response.status == 200
        csp = directives(response.headers["content-security-policy"])
        assert csp["default-src"] == ["'self'"]
        assert csp["img-src"] == ["'self'", "data:"]  # Swagger's icons
        assert set(csp) == {"default-src", "img-src"}, csp  # scripts and styles: 'self' only
        # Nothing inline may run: the page's scripts are files, its inline style carries a nonce.
        for directive in ("script-src", "style-src"):
            assert "'unsafe-inline'" not in csp.get(directive, []), csp
            assert "'unsafe-eval'" not in csp.get(directive, []), csp
        page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
        assert "callsite API" in page.locator(".swagger-ui .info .title").inner_text()
        page.locator(".opblock").first.wait_for(timeout=15_000)  # the schema was fetched
        # The page's own inline style applied: body margin 0 and the grey background.
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == (
            "rgb(250, 250, 250)"
        )
        page.wait_for_timeout(500)
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], violations
        assert not [m for m in console if "Content Security Policy" in m], console
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/schema/", "/api/me/", "/healthz"])
def test_every_other_page_keeps_default_src_self_only(production_server: str, path: str) -> None:
    res = httpx.get(f"{production_server}{path}", timeout=10)
    assert res.headers.get("content-security-policy") == SITE_CSP, (path, res.headers)
