"""One model per primary key scheme, otherwise alike: a key, a time to query by, a payload.

The Snowflake row has no ``created_at``: its key carries the time, so "rows since T" is a range
on the primary key. The others need a time column, with an index of its own, for that query.
Tables are created by the benchmark itself (no migrations).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import ClassVar

from django.db import models
from django.utils import timezone

from django_flakeid.fields import SnowflakeField


def _find_uuid7() -> tuple[Callable[[], uuid.UUID] | None, str]:
    try:
        # The compat module returns the standard library's UUID, which UUIDField expects.
        from uuid_utils.compat import uuid7 as utils_uuid7
    except ImportError:
        stdlib_uuid7: Callable[[], uuid.UUID] | None = getattr(uuid, "uuid7", None)
        return stdlib_uuid7, "uuid.uuid7" if stdlib_uuid7 else ""
    return utils_uuid7, "uuid_utils.compat.uuid7"


_uuid7, UUID7_SOURCE = _find_uuid7()


def new_uuid7() -> uuid.UUID:
    """A new UUIDv7, from uuid-utils, else from Python 3.14's ``uuid.uuid7``."""
    if _uuid7 is None:
        raise RuntimeError("no UUIDv7 source: pip install uuid-utils, or use Python 3.14+")
    return _uuid7()


class BenchRow(models.Model):
    value = models.IntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class SnowflakeRow(BenchRow):
    id = SnowflakeField(primary_key=True)

    objects: ClassVar[models.Manager[SnowflakeRow]] = models.Manager()


class BigAutoRow(BenchRow):
    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True, default=timezone.now)

    objects: ClassVar[models.Manager[BigAutoRow]] = models.Manager()


class UUID4Row(BenchRow):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    created_at = models.DateTimeField(db_index=True, default=timezone.now)

    objects: ClassVar[models.Manager[UUID4Row]] = models.Manager()


class UUID7Row(BenchRow):
    id = models.UUIDField(primary_key=True, default=new_uuid7)
    created_at = models.DateTimeField(db_index=True, default=timezone.now)

    objects: ClassVar[models.Manager[UUID7Row]] = models.Manager()
