"""Request and response shapes for the OpenAPI document.

Validation itself lives in invitations/validation.py (shared with the WebSocket), and responses
are built by invitations/snapshots.py; tests check the two agree with these declarations.
"""

from typing import Any

from rest_framework import serializers

from invitations.models import CallState, CallType, EndReason, ParticipantState, Role
from invitations.push.models import Provider


class UserSerializer(serializers.Serializer):
    username = serializers.CharField()
    display_name = serializers.CharField()
    online = serializers.BooleanField()


class ParticipantSerializer(serializers.Serializer):
    user = serializers.CharField()
    role = serializers.ChoiceField(Role.choices)
    state = serializers.ChoiceField(ParticipantState.choices)
    reason = serializers.CharField(allow_null=True)
    extended_data = serializers.CharField(allow_blank=True)
    invited_by = serializers.CharField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()


class CallSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    inviter = serializers.CharField()
    type = serializers.ChoiceField(CallType.choices)
    state = serializers.ChoiceField(CallState.choices)
    end_reason = serializers.ChoiceField(EndReason.choices, allow_null=True)
    timeout = serializers.IntegerField()
    extended_data = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    participants = ParticipantSerializer(many=True)


class InviteErrorSerializer(serializers.Serializer):
    user = serializers.CharField()
    reason = serializers.ChoiceField(["not_found", "already_in_call", "call_full"])


class CallWithErrorsSerializer(serializers.Serializer):
    call = CallSerializer()
    # The API names this field "errors", which shadows Serializer.errors; this serializer only
    # documents the response in the OpenAPI schema and never validates anything.
    errors = InviteErrorSerializer(many=True)  # type: ignore[assignment]


class CallOnlySerializer(serializers.Serializer):
    call = CallSerializer()


class ExtendedDataField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=False,
            allow_blank=True,
            max_length=2048,
            help_text="Opaque string, at most 2048 bytes in UTF-8.",
            **kwargs,
        )


class StartCallRequest(serializers.Serializer):
    invitees = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=9)
    type = serializers.ChoiceField(CallType.choices, required=False, default=CallType.VIDEO)
    timeout = serializers.IntegerField(min_value=1, max_value=600, required=False, default=60)
    extended_data = ExtendedDataField()
    device_id = serializers.CharField(required=False, max_length=64)


class InviteRequest(serializers.Serializer):
    invitees = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=9)
    extended_data = ExtendedDataField()


class CancelRequest(serializers.Serializer):
    invitees = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Default: every ringing invitation you sent.",
    )
    extended_data = ExtendedDataField()


class AcceptRequest(serializers.Serializer):
    extended_data = ExtendedDataField()
    device_id = serializers.CharField(required=False, max_length=64)


class RejectRequest(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=32, default="declined")
    extended_data = ExtendedDataField()


class ExtendedDataRequest(serializers.Serializer):
    extended_data = ExtendedDataField()


class TokenRequest(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    device_id = serializers.CharField(
        required=False, max_length=64, help_text="A stable id of this device (app install)."
    )


class TokenResponse(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
    expires_at = serializers.DateTimeField(
        help_text="When it stops working; using it moves this forward (TOKEN_TTL_DAYS)."
    )


class BlockSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="The username you blocked.")
    created_at = serializers.DateTimeField()


class TicketResponse(serializers.Serializer):
    ticket = serializers.CharField(help_text="Connect with `/ws/?ticket=<ticket>`, once.")
    expires_at = serializers.DateTimeField(help_text="Unused by then, it is refused.")


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# --- push (API.md "Push") ---------------------------------------------------------------------

PUSH_PROVIDERS = Provider.choices


class WebPushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(help_text="base64url, 65 bytes (P-256 public key)")
    auth = serializers.CharField(help_text="base64url, 16 bytes")


class WebPushSubscriptionSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1024)
    keys = WebPushKeysSerializer()


class PushDeviceRequest(serializers.Serializer):
    device_id = serializers.CharField(max_length=64, help_text="The device's stable id.")
    provider = serializers.ChoiceField(PUSH_PROVIDERS)
    token = serializers.CharField(
        required=False, max_length=1024, help_text="apns, apns_voip (hex) and fcm."
    )
    subscription = WebPushSubscriptionSerializer(
        required=False, help_text="webpush: the PushSubscription's JSON."
    )
    app_id = serializers.CharField(
        required=False, max_length=200, help_text="APNs bundle id / FCM app, if not the default."
    )


class PushDeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    device_id = serializers.CharField()
    provider = serializers.ChoiceField(PUSH_PROVIDERS)
    app_id = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class PushDeviceResponse(serializers.Serializer):
    device = PushDeviceSerializer()


class VapidSerializer(serializers.Serializer):
    vapid_public_key = serializers.CharField()


class PushConfigSerializer(serializers.Serializer):
    providers = serializers.ListField(child=serializers.ChoiceField(PUSH_PROVIDERS))
    webpush = VapidSerializer(allow_null=True)


class AckRequest(serializers.Serializer):
    device_id = serializers.CharField(required=False, max_length=64)
