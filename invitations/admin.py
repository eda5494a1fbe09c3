"""Admin: inspect calls with their participants and the whole event timeline."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Call, CallEvent, Participant
from .push.models import PushDelivery, PushDevice


class FieldsShownReadOnly:
    """Every field a page shows is read-only: ``fields`` names them once (else the model's)."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Mixed into ModelAdmin and InlineModelAdmin, which define both attributes.
        return getattr(self, "fields", None) or getattr(self, "readonly_fields", ())


class ReadOnlyInline(FieldsShownReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rows change only through the state machine


class ViewAndDeleteAdmin(FieldsShownReadOnly, admin.ModelAdmin):
    """Rows the app writes: an operator may look at them or delete them, never add or edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ViewAndDeleteAdmin):
    """A record of what happened (the timeline, push attempts): seen, never changed."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ParticipantInline(ReadOnlyInline):
    model = Participant
    fields = (
        "user",
        "role",
        "state",
        "reason",
        "invited_by",
        "deadline",
        "device_id",
        "extended_data",
        "joined_at",
        "updated_at",
    )


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    verbose_name_plural = "Timeline"
    fields = ("created_at", "kind", "actor", "subject", "data")
    ordering = ("created_at", "id")


class PushDeliveryInline(ReadOnlyInline):
    """The pushes this call owed to devices without a socket; each attempt is also a ``push``
    row of the timeline above (provider, outcome, status, latency)."""

    model = PushDelivery
    verbose_name_plural = "Pushes"
    fields = (
        "created_at",
        "kind",
        "reason",
        "provider",
        "device_id",
        "state",
        "attempts",
        "last_status",
        "last_detail",
        "latency_ms",
        "not_after",
        "sent_at",
    )
    ordering = ("created_at", "id")


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    # The page is for inspection (no Save button); the only write is "force end" below. Calls
    # change only through the state machine, and their history is kept.
    list_display = (
        "id",
        "inviter",
        "type",
        "state",
        "end_reason",
        "participant_count",
        "created_at",
        "ended_at",
    )
    list_filter = ("state", "type", "end_reason", ("created_at", admin.DateFieldListFilter))
    search_fields = ("inviter__username", "participants__user__username")
    date_hierarchy = "created_at"
    inlines = [ParticipantInline, CallEventInline, PushDeliveryInline]
    readonly_fields = (
        "id",
        "inviter",
        "type",
        "state",
        "end_reason",
        "timeout",
        "extended_data",
        "created_at",
        "ended_at",
        "inviter_offline_deadline",
    )
    actions = ["force_end"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        return super().get_queryset(request).select_related("inviter")

    @admin.display(description="participants")
    def participant_count(self, obj: Call) -> int:
        return obj.participants.count()

    def has_force_end_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invitations.force_end_call")

    @admin.action(
        description="Force end the selected calls (through the state machine)",
        permissions=["force_end"],
    )
    def force_end(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        operator = request.user if isinstance(request.user, User) else None
        ended = sum(services.force_end(call_id=c.pk, operator=operator) for c in queryset)
        skipped = queryset.count() - ended
        self.message_user(
            request, f"Ended {ended} call(s); {skipped} had already ended.", messages.SUCCESS
        )


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "call", "kind", "actor", "subject")
    list_filter = ("kind",)
    search_fields = ("call__id", "actor__username", "subject__username")


# --- Push devices: per user, never showing a token --------------------------------------------


@admin.register(PushDevice)
class PushDeviceAdmin(ViewAndDeleteAdmin):
    """Each user's push registrations (filter by user with the search box or ``?user__id=``).
    Deleting one stops pushes to it; tokens and subscriptions are not shown (they are
    credentials to ring that phone)."""

    list_display = ("user", "device_id", "provider", "app_id", "created_at", "last_used_at")
    list_filter = ("provider",)
    list_select_related = ("user",)
    search_fields = ("user__username", "device_id")
    fields = (
        "user",
        "device_id",
        "provider",
        "app_id",
        "created_at",
        "registered_at",
        "last_used_at",
    )
    ordering = ("user__username", "device_id")


@admin.register(PushDelivery)
class PushDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "call", "kind", "reason", "provider", "device_id", "state")
    list_filter = ("state", "kind", "provider")
    search_fields = ("call__id", "participant__user__username", "device_id")
    readonly_fields = [f.name for f in PushDelivery._meta.fields]


# --- API tokens: shown by device and expiry, never by key ---------------------------------------

# Import the libraries' admin modules now, so that their registrations exist to be replaced:
# DRF's lists plain token keys, knox's lists digests and creates tokens from the admin.
import knox.admin  # noqa: E402,F401
import rest_framework.authtoken.admin  # noqa: E402,F401
from knox.models import AuthToken  # noqa: E402
from rest_framework.authtoken.models import TokenProxy  # noqa: E402

for _model in (AuthToken, TokenProxy):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AuthToken)
class ApiTokenAdmin(ViewAndDeleteAdmin):
    """Who holds a token on which device, and until when. Deleting one revokes it (its sockets
    close within seconds); nothing here shows or creates a token."""

    list_display = ("user", "device", "created", "expiry")
    list_select_related = ("user", "device")
    search_fields = ("user__username", "device__device_id")
    fields = ("user", "device", "created", "expiry")
    ordering = ("-created",)

    @admin.display(description="device")
    def device(self, obj: AuthToken) -> str:
        device = getattr(obj, "device", None)
        return (device.device_id if device else "") or "(unnamed)"
