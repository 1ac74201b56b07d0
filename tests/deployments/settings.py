"""Settings for the servers and scripts that the deployment tests start.

The environment decides what differs between runs: ``DEPLOY_FLAKEID`` (the FLAKEID setting as
JSON), ``DEPLOY_DATABASE`` (sqlite, postgresql or mariadb) and ``DEPLOY_DATABASE_NAME``, and
``DEPLOY_OTHER_DATABASE_NAME`` for a second alias, ``other``, on the same server.
"""

from __future__ import annotations

import json
import os
from typing import Any

SECRET_KEY = "deployment-tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.deployments.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django_flakeid"]
MIDDLEWARE: list[str] = []

FLAKEID = json.loads(os.environ.get("DEPLOY_FLAKEID", "{}"))


def _database(name: str) -> dict[str, Any]:
    vendor = os.environ.get("DEPLOY_DATABASE", "sqlite")
    if vendor == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if vendor == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "5432"),
            "USER": os.environ.get("FLAKEID_TEST_DB_USER", "postgres"),
            "NAME": name,
        }
    return {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "3306"),
        "USER": os.environ.get("FLAKEID_TEST_DB_USER", "root"),
        "PASSWORD": "",
        "NAME": name,
        "OPTIONS": {"charset": "utf8mb4"},
    }


DATABASES = {"default": _database(os.environ.get("DEPLOY_DATABASE_NAME", ":memory:"))}
if "DEPLOY_OTHER_DATABASE_NAME" in os.environ:
    DATABASES["other"] = _database(os.environ["DEPLOY_OTHER_DATABASE_NAME"])
