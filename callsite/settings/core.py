"""Django itself: apps, middleware, templates, auth, i18n, static files, and login lockouts
(django-axes, callsite/logins.py)."""

from __future__ import annotations

from datetime import timedelta

from .env import BASE_DIR, VAR_DIR, env_bool, env_float, env_int

INSTALLED_APPS = [
    # Before channels and daphne so that our `runworker` (which starts the timer
    # instance eagerly) overrides theirs.
    "invitations",
    "calls",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    # Only for the migration that hashes the tokens it issued before knox (invitations 0004).
    "rest_framework.authtoken",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First: request id, log context, HTTP metrics and the access line (callsite/middleware.py).
    "callsite.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429 (callsite/logins.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "callsite.urls"
ASGI_APPLICATION = "callsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "callsite.logins.LoginAttemptBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Password guessing (callsite/logins.py) ---------------------------------------------------

# Trusted reverse proxies in front of the server, each appending to X-Forwarded-For (nginx with
# $proxy_add_x_forwarded_for). 0: the client is REMOTE_ADDR. Used by every per-address limit.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_COOLOFF_MINUTES", 30))
AXES_CLIENT_IP_CALLABLE = "callsite.logins.client_ip"
AXES_LOCKOUT_CALLABLE = "callsite.logins.lockout_response"
# Failed logins are a WARNING of django-axes; passwords are never logged (AXES_SENSITIVE_...).
AXES_VERBOSE = env_bool("LOGIN_LOG_FAILURES", True)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Form posts (the login pages); the ASGI body limit (callsite/bodylimit.py) comes first anyway.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
