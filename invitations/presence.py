"""Who is online. Placeholder until the live delivery issue tracks devices."""

from __future__ import annotations


def online_user_ids(user_ids: list[int]) -> set[int]:
    return set()
