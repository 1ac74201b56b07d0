from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from django.db import models

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager

# No model declares a key: each gets the app's default auto field, SnowflakeAutoField, named
# by ShopConfig or by DEFAULT_AUTO_FIELD (see apps.py). The managers and the reverse relation
# are spelled out for type checkers, which analyse this project with the test settings, where
# this app is not installed.


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)

    objects: ClassVar[models.Manager[Customer]] = models.Manager()

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    objects: ClassVar[models.Manager[Tag]] = models.Manager()

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    tags = models.ManyToManyField(Tag, blank=True, related_name="orders")

    objects: ClassVar[models.Manager[Order]] = models.Manager()
    if TYPE_CHECKING:
        lines: RelatedManager[OrderLine]

    class Meta:
        # Snowflake IDs grow with time, so this is newest first without a created_at column.
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"Order {self.pk}"

    @property
    def total(self) -> Decimal:
        return sum((line.subtotal for line in self.lines.all()), Decimal(0))


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=8, decimal_places=2)

    objects: ClassVar[models.Manager[OrderLine]] = models.Manager()

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"

    @property
    def subtotal(self) -> Decimal:
        return self.quantity * self.unit_price
