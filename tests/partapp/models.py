from __future__ import annotations

from typing import ClassVar

from django.db import models

from django_flakeid.fields import SnowflakeField
from django_flakeid.partitions import SnowflakePartitions

# Every foreign key here is a plain column on the database side (db_constraint=False): MariaDB
# refuses foreign keys to or from a partitioned table. Django still cascades and joins on them.


class Sensor(models.Model):
    id = SnowflakeField(primary_key=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    id = SnowflakeField(primary_key=True)
    kind = models.CharField(max_length=50)
    # Not unique: a partitioned table may have no unique key without the partition key.
    ref = SnowflakeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            SnowflakePartitions(name="partapp_event_by_month", interval="month")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"


class EventNote(models.Model):
    id = SnowflakeField(primary_key=True)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, db_constraint=False, related_name="notes"
    )
    text = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.text or f"Note {self.pk}"


class Reading(models.Model):
    id = SnowflakeField(primary_key=True)
    sensor = models.ForeignKey(
        Sensor, on_delete=models.CASCADE, db_constraint=False, related_name="readings"
    )
    event = models.ForeignKey(
        Event,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="readings",
    )
    value = models.FloatField()

    class Meta:
        constraints: ClassVar = [
            SnowflakePartitions(name="partapp_reading_by_day", interval="day", ahead=2)
        ]

    def __str__(self) -> str:
        return f"{self.value} from {self.sensor_id}"
