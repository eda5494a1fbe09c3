"""Create the demo users (alice, bob, carol, dave) and an admin, and print their passwords."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERS = [
    ("alice", "Alice", "Anders"),
    ("bob", "Bob", "Baker"),
    ("carol", "Carol", "Chen"),
    ("dave", "Dave", "Diaz"),
]


class Command(BaseCommand):
    help = "Create demo users and an admin (idempotent; resets their passwords)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--password", default="callsite-demo", help="Password for the demo users."
        )
        parser.add_argument("--admin-password", default="callsite-admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            # Published passwords, and an admin whose password is reset on every run.
            raise CommandError(
                "Refusing to create demo users under production settings (CALLSITE_ENV=production)."
            )
        user_model = get_user_model()
        for username, first, last in DEMO_USERS:
            user, _ = user_model.objects.get_or_create(username=username)
            user.first_name, user.last_name = first, last
            user.set_password(options["password"])
            user.save()
        admin, _ = user_model.objects.get_or_create(username="admin")
        admin.is_staff = admin.is_superuser = True
        admin.set_password(options["admin_password"])
        admin.save()
        names = ", ".join(u for u, _, _ in DEMO_USERS)
        self.stdout.write(f"Demo users: {names} (password: {options['password']})")
        self.stdout.write(f"Admin: admin (password: {options['admin_password']}) at /admin/")
