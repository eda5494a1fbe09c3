from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class InvitationThrottle(UserRateThrottle):
    """Starting calls and inviting people, per user (commercial SDKs cap this at ~20/s)."""

    scope = "invitations"


class TokenThrottle(AnonRateThrottle):
    """Password guessing on the token endpoint, per client address."""

    scope = "token"
