from __future__ import annotations

from django.db import models

from django_flakeid.fields import SnowflakeField


class Customer(models.Model):
    id = SnowflakeField(primary_key=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="profile")
    bio = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.customer}"


class Tag(models.Model):
    id = SnowflakeField(primary_key=True)
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    id = SnowflakeField(primary_key=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    reference = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="orders")

    def __str__(self) -> str:
        return self.reference or f"Order {self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"


class Article(models.Model):
    public_id = SnowflakeField(unique=True)
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title


class NullableThing(models.Model):
    # Nullable, but still filled with a new ID on creation.
    filled = SnowflakeField(null=True, blank=True)
    # Left empty unless set: default=None switches the ID generation off.
    empty = SnowflakeField(null=True, blank=True, default=None)

    def __str__(self) -> str:
        return f"NullableThing {self.pk}"


class ExternalRecord(models.Model):
    # An ID made by another system, typed in by hand: editable, so it appears on forms.
    source_id = SnowflakeField(unique=True, editable=True)
    note = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"Record {self.source_id}"


class LegacyEvent(models.Model):
    # A table keyed by auto-increment that gains a Snowflake column later: the backfill's case.
    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True, null=True)
    public_id = SnowflakeField(null=True, blank=True, default=None)
    name = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return self.name or f"Event {self.pk}"
