"""Test settings. FLAKEID_TEST_DB picks the database: sqlite (default), postgresql or mariadb."""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
# The one-setting way: every app that names no default of its own gets Snowflake keys.
DEFAULT_AUTO_FIELD = "django_flakeid.fields.SnowflakeAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_flakeid",
    "tests.testapp",
    "tests.autoapp",
    "tests.rekeyapp",
    "tests.partapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

FLAKEID = {"preset": "twitter", "datacenter_id": 1, "machine_id": 7}

# One test database per run, so that runs side by side on one server do not drop each other's.
_TEST_NAME = f"test_flakeid_{os.getpid()}"
_DATABASES: dict[str, dict[str, Any]] = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FLAKEID_TEST_DB_NAME", ":memory:"),
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "5432"),
        "USER": os.environ.get("FLAKEID_TEST_DB_USER", "postgres"),
        "NAME": os.environ.get("FLAKEID_TEST_DB_NAME", "test"),
        "TEST": {"NAME": _TEST_NAME},
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "3306"),
        "USER": os.environ.get("FLAKEID_TEST_DB_USER", "root"),
        "PASSWORD": "",
        "NAME": os.environ.get("FLAKEID_TEST_DB_NAME", "test"),
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": _TEST_NAME, "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    },
}
_selected = os.environ.get("FLAKEID_TEST_DB", "sqlite")
if _selected not in _DATABASES:
    raise RuntimeError(f"FLAKEID_TEST_DB must be one of {', '.join(_DATABASES)}, not {_selected!r}")
DATABASES = {"default": _DATABASES[_selected]}
