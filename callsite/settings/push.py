"""Push (issue 12): rings and stops for devices that hold no socket (API.md "Push",
docs/push.md).

A provider is on only when its credentials are set: with none of these, push is off and the
call path reads nothing about push devices. Base URLs and CA bundles exist so tests (and
operators behind a proxy) can point each sender elsewhere; the defaults are the real services.
"""

from __future__ import annotations

import os

from .api import SPECTACULAR_SETTINGS
from .env import env_float, env_int, env_list

# --- Push (issue 12) ---------------------------------------------------------------------------

# Seconds a device with an open socket has to ack an invitation before it is pushed anyway
# (iOS keeps a suspended app's socket looking open).
PUSH_ACK_GRACE = env_float("PUSH_ACK_GRACE", 3)
# Seconds a stop (call.ring_stopped) is retried for: the ring it answers may already be past
# its deadline, and a stop nobody received for this long is moot (the app times out itself).
PUSH_STOP_TTL = env_float("PUSH_STOP_TTL", 30)
# The channel the delivery worker listens on (`manage.py runworker push-delivery`).
PUSH_CHANNEL = "push-delivery"
# Pushes one worker has in flight at once, and how often it rescans the table for due rows a
# lost wake-up message would otherwise leave waiting.
PUSH_CONCURRENCY = env_int("PUSH_CONCURRENCY", 20)
PUSH_RESCAN_SECONDS = env_float("PUSH_RESCAN_SECONDS", 5)
# Retries: jittered exponential backoff from this base, never past the push's deadline.
PUSH_RETRY_BASE = env_float("PUSH_RETRY_BASE", 0.5)
PUSH_RETRY_MAX = env_float("PUSH_RETRY_MAX", 30)

# Webhook gateway (operators with their own push stack): with both set, every apns, apns_voip
# and fcm push goes here instead of Apple or Google, signed per Standard Webhooks.
PUSH_WEBHOOK_URL = os.environ.get("PUSH_WEBHOOK_URL", "")
PUSH_WEBHOOK_SECRET = os.environ.get("PUSH_WEBHOOK_SECRET", "")  # whsec_<base64>
PUSH_WEBHOOK_CA_BUNDLE = os.environ.get("PUSH_WEBHOOK_CA_BUNDLE", "")  # "": the system's CAs

# Web Push (VAPID): the server's key pair and its contact (mailto: or https: URL).
WEBPUSH_VAPID_PRIVATE_KEY = os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY", "")
WEBPUSH_VAPID_PUBLIC_KEY = os.environ.get("WEBPUSH_VAPID_PUBLIC_KEY", "")
WEBPUSH_VAPID_SUBJECT = os.environ.get("WEBPUSH_VAPID_SUBJECT", "")
WEBPUSH_CA_BUNDLE = os.environ.get("WEBPUSH_CA_BUNDLE", "")  # "": the system's CAs
# Hosts (and their subdomains) a subscription's endpoint may name: the server POSTs there, so
# not just any host, the internal network included. "*" allows any; http only for loopback.
WEBPUSH_ENDPOINT_HOSTS = env_list(
    "WEBPUSH_ENDPOINT_HOSTS",
    [
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    ],
)

# APNs, token-based (a .p8 key); the VoIP topic is APNS_TOPIC + ".voip".
APNS_KEY_FILE = os.environ.get("APNS_KEY_FILE", "")
APNS_KEY_ID = os.environ.get("APNS_KEY_ID", "")
APNS_TEAM_ID = os.environ.get("APNS_TEAM_ID", "")
APNS_TOPIC = os.environ.get("APNS_TOPIC", "")
APNS_BASE_URL = os.environ.get("APNS_BASE_URL", "https://api.push.apple.com")
APNS_CA_BUNDLE = os.environ.get("APNS_CA_BUNDLE", "")

# FCM HTTP v1: a service-account JSON file (its token_uri is the OAuth endpoint).
FCM_SERVICE_ACCOUNT_FILE = os.environ.get("FCM_SERVICE_ACCOUNT_FILE", "")
FCM_BASE_URL = os.environ.get("FCM_BASE_URL", "https://fcm.googleapis.com")
FCM_CA_BUNDLE = os.environ.get("FCM_CA_BUNDLE", "")

# The OpenAPI document names the providers' enum once, wherever a push field uses it.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "PushProviderEnum": "invitations.push.models.Provider",
}
