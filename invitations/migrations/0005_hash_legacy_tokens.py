"""Tokens issued before django-rest-knox (DRF's, stored in plain text) become hashed, expiring
knox tokens with the same key, so the clients holding them keep working; the plain rows go."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone


def hash_legacy_tokens(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    legacy = apps.get_model("authtoken", "Token")
    knox_token = apps.get_model("knox", "AuthToken")
    token_device = apps.get_model("invitations", "TokenDevice")
    expiry = timezone.now() + timedelta(days=30)
    for row in legacy.objects.all().iterator():
        digest = hash_token(row.key)
        knox_token.objects.get_or_create(
            digest=digest,
            defaults={
                "token_key": row.key[: CONSTANTS.TOKEN_KEY_LENGTH],
                "user_id": row.user_id,
                "expiry": expiry,
            },
        )
        token_device.objects.get_or_create(
            token_id=digest, defaults={"user_id": row.user_id, "device_id": ""}
        )
    legacy.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invitations", "0004_tokendevice"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop)]
