"""The example shop with Snowflake keys from one setting, ``DEFAULT_AUTO_FIELD``.

Run it with ``--settings example.settings_auto`` (or ``DJANGO_SETTINGS_MODULE``). The shop's
models declare no key, so they take the default auto field, here from the setting: the shop is
installed through an app config that names none of its own, as ``startapp``'s ``apps.py`` does
once its ``default_auto_field`` line is deleted. The tables are the same as with
``example.settings`` (where ``ShopConfig`` names SnowflakeAutoField itself), so both share the
shop's migrations; only the table Django creates for ``Order.tags`` differs: its key is built
from ``DEFAULT_AUTO_FIELD``, a Snowflake key here, an auto-increment there.
"""

from __future__ import annotations

import os

from .settings import *  # noqa: F403
from .settings import BASE_DIR, DATABASES, INSTALLED_APPS

INSTALLED_APPS = [
    "shop.apps.DefaultAutoFieldShopConfig" if app == "shop" else app for app in INSTALLED_APPS
]

DEFAULT_AUTO_FIELD = "django_flakeid.fields.SnowflakeAutoField"

# A database of its own, since the table for Order.tags is not the one example.settings makes.
if "EXAMPLE_DATABASE_NAME" not in os.environ:
    _sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    DATABASES["default"]["NAME"] = str(BASE_DIR / "db-auto.sqlite3") if _sqlite else "example_auto"
