"""Push tests: the provider fixture servers (tests/push/fixtures/plugin.py)."""

from tests.push.fixtures.plugin import (  # noqa: F401
    apns_server,
    fcm_rsa_key,
    fcm_server,
    push_pki,
    webpush_service,
)
