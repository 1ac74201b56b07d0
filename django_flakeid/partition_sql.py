"""The DDL of time partitions: which database can partition, and how.

PostgreSQL (``partition_pg``) and MariaDB (``partition_mariadb``) keep a catch-all past the
newest partition (``DEFAULT``, ``pmax``) so that no write ever fails for want of a partition;
new partitions are cut from its low end, moving any rows it holds. Other databases cannot
partition: :func:`backend_for` returns None for them and the declaration is a no-op there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .partition_base import Partition, PartitionBackend
from .partition_mariadb import MariaDBPartitions
from .partition_pg import PostgresPartitions

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = [
    "MariaDBPartitions",
    "Partition",
    "PartitionBackend",
    "PostgresPartitions",
    "backend_for",
]


def backend_for(connection: BaseDatabaseWrapper) -> PartitionBackend | None:
    """The partition DDL of ``connection``'s database; None where it cannot partition."""
    if connection.vendor == "postgresql":
        return PostgresPartitions()
    if connection.vendor == "mysql" and getattr(connection, "mysql_is_mariadb", False):
        return MariaDBPartitions()
    return None
