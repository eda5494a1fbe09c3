"""ASGI entry point: HTTP through Django, /ws/ through Channels, and the timer channel."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from invitations.routing import websocket_application  # noqa: E402
from invitations.timers import timer_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(),
        "channel": timer_application(),
    }
)
