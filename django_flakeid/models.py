"""The app's models: the lease table, and an abstract model keyed by a Snowflake auto field."""

from __future__ import annotations

from django.db import models

from .fields import SnowflakeAutoField
from .lease_model import NodeLease

__all__ = ["NodeLease", "SnowflakeModel"]


class SnowflakeModel(models.Model):
    """An abstract model whose key is a :class:`~django_flakeid.fields.SnowflakeAutoField`.

    It adds the key and nothing else: ``pk`` is None until the first ``save()``.
    """

    id = SnowflakeAutoField(primary_key=True)

    class Meta:
        abstract = True
