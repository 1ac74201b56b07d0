"""Settings for the example shop. Not for production: the secret key is public and DEBUG is on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-project-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_flakeid",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

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

# SQLite next to manage.py by default; EXAMPLE_DATABASE=postgresql or mariadb serves the same
# shop from the server on 127.0.0.1 (database EXAMPLE_DATABASE_NAME, user postgres or root).
_database = os.environ.get("EXAMPLE_DATABASE", "sqlite")
DATABASES: dict[str, dict[str, Any]]
if _database == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "NAME": os.environ.get("EXAMPLE_DATABASE_NAME", "example"),
        }
    }
elif _database == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_TCP_PORT", "3306"),
            "USER": "root",
            "NAME": os.environ.get("EXAMPLE_DATABASE_NAME", "example"),
            "OPTIONS": {"charset": "utf8mb4"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("EXAMPLE_DATABASE_NAME", str(BASE_DIR / "db.sqlite3")),
        }
    }

# What startapp's project template sets. The shop's own models still get Snowflake keys: its
# ShopConfig names SnowflakeAutoField (shop/apps.py). example/settings_auto.py shows the
# one-setting way instead.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Europe/Paris"
STATIC_URL = "static/"

# Datacenter 1. The machine ID comes from FLAKEID_MACHINE_ID when set (a number, or "lease" to
# lease one from the database), else each process claims a free one on this host ("auto").
FLAKEID = {
    "preset": "twitter",
    "datacenter_id": 1,
}
