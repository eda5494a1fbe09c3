"""HTTPS and browser protections (docs/security.md)."""

from __future__ import annotations

from csp.constants import SELF
from django.core.exceptions import ImproperlyConfigured

from .env import PRODUCTION, env_bool, env_int, env_list

# The pages load only this origin's own modules and styles: no inline script, no CDN. 'self'
# covers the same origin's ws:/wss: for /ws/ in current browsers.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF]}}

# Behind a TLS-terminating proxy: the header (and value) by which it says the client used HTTPS,
# e.g. "X-Forwarded-Proto,https". Only set it if the proxy always sets (or strips) that header.
# BEHIND_TLS_PROXY=1 is the short form for deploy/nginx, which sets X-Forwarded-Proto.
_proxy_default = ["X-Forwarded-Proto", "https"] if env_bool("BEHIND_TLS_PROXY", False) else []
_proxy_ssl = env_list("SECURE_PROXY_SSL_HEADER", _proxy_default)
if len(_proxy_ssl) == 2:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl[0].upper().replace("-", "_"), _proxy_ssl[1])
elif _proxy_ssl:
    raise ImproperlyConfigured('SECURE_PROXY_SSL_HEADER must look like "X-Forwarded-Proto,https".')

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes on the private network speak plain HTTP to the server itself.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Asking browsers to preload the domain is the operator's decision (hard to undo), not
        # a default; docs/security.md says how.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
