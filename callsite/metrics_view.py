"""``GET /metrics``: this process's metrics (callsite/metrics.py) in Prometheus' text format.

Who may read them (``METRICS`` in settings):

- a client whose address is in ``METRICS_ALLOWED_NETWORKS`` (default: loopback only), talking
  to this process directly. A request that came through a proxy (it carries
  ``X-Forwarded-For``) does not count as local, since to this process the proxy *is* local;
- or anyone presenting ``Authorization: Bearer <METRICS_TOKEN>``, when that token is set.

Anyone else gets 403. The nginx site of deploy/ does not pass /metrics on at all.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from . import metrics  # noqa: F401  (defines the metrics and registers their collectors)


@cache
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in spec)


def _from_allowed_network(request: HttpRequest) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = _networks(tuple(settings.METRICS["ALLOWED_NETWORKS"]))
    return any(address in net for net in networks)


def _has_token(request: HttpRequest) -> bool:
    token = str(settings.METRICS["TOKEN"])
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and matches


@require_safe
async def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_from_allowed_network(request) or _has_token(request)):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
