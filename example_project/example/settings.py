"""Settings for the example shop. Not for production: the secret key is public and DEBUG is on."""

from __future__ import annotations

import os
from importlib.util import find_spec
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


def _installed(*modules: str) -> bool:
    # find_spec() rather than an import: Django Ninja reads the settings as it is imported.
    return all(find_spec(module) is not None for module in modules)


# The shop's APIs need the optional packages of the extras spectacular, ninja and filter
# (python -m pip install -e ".[spectacular,ninja,filter]"). Each is installed here, and mounted
# by example/urls.py, only when its packages are there: with Django alone the shop still runs.
if _installed("rest_framework"):
    INSTALLED_APPS.append("rest_framework")
    # The schema and its Swagger UI page, whose scripts and styles sidecar serves as static files.
    if _installed("drf_spectacular", "drf_spectacular_sidecar"):
        INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
if _installed("django_filters"):
    INSTALLED_APPS.append("django_filters")
if _installed("ninja"):
    # Installed, Ninja serves its docs page's assets from its static files; left out, it would
    # link them from a CDN, which machines behind a firewall cannot reach.
    INSTALLED_APPS.append("ninja")

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

# What the APIs read when their packages are installed (see INSTALLED_APPS above).
REST_FRAMEWORK: dict[str, Any] = {}
if "drf_spectacular" in INSTALLED_APPS:
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
if "django_filters" in INSTALLED_APPS:
    REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = [
        "django_filters.rest_framework.DjangoFilterBackend"
    ]
SPECTACULAR_SETTINGS = {
    "TITLE": "Example shop",
    "DESCRIPTION": "The example shop through Django REST framework. Every ID is a string.",
    "VERSION": "1.0.0",
    # Operations are tagged by the path segment after the prefix: orders, customers, ...
    "SCHEMA_PATH_PREFIX": "/api/rest/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
