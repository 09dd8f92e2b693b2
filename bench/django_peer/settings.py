"""Settings of the django-scim2 peer (bench only): one app, its own PostgreSQL database, one
static bearer token, nothing else on the request path.

Configured from the environment by bench/run.py: BENCH_DJANGO_DB_{NAME,HOST,PORT,USER,PASSWORD}
and BENCH_DJANGO_TOKEN. Connections persist (CONN_MAX_AGE None: one per gunicorn worker
thread, as a production deployment would run it; Django's default of 0 would connect per
request)."""

from __future__ import annotations

import os

SECRET_KEY = "scim-bench-django-peer"  # noqa: S105 - a local benchmark, no sessions
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "peerapp",
]
# Only the token check: django-scim2's views are csrf_exempt and need no sessions.
MIDDLEWARE = ["peerapp.middleware.BearerTokenMiddleware"]
ROOT_URLCONF = "urls"
WSGI_APPLICATION = "wsgi.application"
AUTH_USER_MODEL = "peerapp.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DJANGO_DB_NAME", "scim_bench_django"),
        "HOST": os.environ.get("BENCH_DJANGO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_DJANGO_DB_PORT", "5432"),
        "USER": os.environ.get("BENCH_DJANGO_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("BENCH_DJANGO_DB_PASSWORD", ""),
        "CONN_MAX_AGE": None,
    }
}

BENCH_TOKEN = os.environ.get("BENCH_DJANGO_TOKEN", "")

SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "SCHEME": "http",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
        }
    ],
    "GROUP_MODEL": "peerapp.models.Group",
    "USER_FILTER_PARSER": "peerapp.filters.UserFilterQuery",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
