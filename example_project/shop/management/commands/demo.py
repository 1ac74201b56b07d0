from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.utils import timezone

from django_flakeid import conf
from django_flakeid.errors import FlakeIDError
from django_flakeid.fields import SnowflakeField

from ...models import Customer, Order, OrderLine, Tag


class Command(BaseCommand):
    help = "Create the database if needed, add a sample order and show what its IDs decode to."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0)
        try:
            config = conf.get_config()
            generator = conf.get_generator()
        except FlakeIDError as error:
            raise CommandError(str(error)) from None
        node = config.node
        datacenter, machine = node.datacenter_id, node.machine_id
        how = "" if node.machine_mode == "fixed" else f", {machine.value}"
        self.stdout.write(
            f"FLAKEID: {config.preset_name or 'custom'} layout, datacenter "
            f"{generator.datacenter_id} ({datacenter.describe()}), machine "
            f"{generator.machine_id} ({machine.describe()}{how})"
        )
        self.stdout.write(f"Keys: {key_source()}")

        with transaction.atomic():
            new_rows = self.create_sample_data()

        zone = f"Generated ({timezone.get_current_timezone_name()})"
        self.stdout.write(f"\n  {'New row':<9}  {'ID':<19}  {zone:<24}  DC  Machine  Seq  Row")
        for row, text in new_rows:
            self.stdout.write(describe(row, text))

        newest = [str(pk) for pk in Order.objects.values_list("pk", flat=True)[:3]]
        total = Order.objects.count()
        more = ", ..." if total > len(newest) else ""
        self.stdout.write(
            f"\n{total} order{'' if total == 1 else 's'} in the shop, newest first by ID alone: "
            f"{', '.join(newest)}{more}\n"
            "Decode any ID with: manage.py flakeid decode <id>"
        )

    def create_sample_data(self) -> list[tuple[models.Model, str]]:
        new_rows: list[tuple[models.Model, str]] = []
        customer, created = Customer.objects.get_or_create(
            email="ada@example.com", defaults={"name": "Ada Lovelace"}
        )
        if created:
            new_rows.append((customer, customer.name))
        tags = []
        for name in ("gift", "express"):
            tag, created = Tag.objects.get_or_create(name=name)
            tags.append(tag)
            if created:
                new_rows.append((tag, tag.name))
        order = Order.objects.create(customer=customer)
        order.tags.set(tags)
        new_rows.append((order, f"for {customer.name}"))
        lines = OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product="Notebook", quantity=2, unit_price=Decimal("4.50")),
                OrderLine(order=order, product="Fountain pen", unit_price=Decimal("32.00")),
            ]
        )
        new_rows.extend((line, str(line)) for line in lines)
        return new_rows


def key_source() -> str:
    """The shop's key field, and whether its app config or the project's setting chose it."""
    app_config = Order._meta.app_config
    field = type(Order._meta.pk).__name__
    if "default_auto_field" in vars(type(app_config)):
        return f"{field}, from {type(app_config).__name__}.default_auto_field"
    return f"{field}, from settings.DEFAULT_AUTO_FIELD"


def describe(row: models.Model, text: str) -> str:
    field = row._meta.pk
    assert isinstance(field, SnowflakeField)
    decoded = field.decode(row.pk)
    local = timezone.localtime(decoded.datetime)
    generated = f"{local:%Y-%m-%d %H:%M:%S}.{decoded.timestamp_ms % 1000:03d}"
    return (
        f"  {type(row).__name__:<9}  {row.pk:<19}  {generated:<24}  {decoded.datacenter_id:>2}  "
        f"{decoded.machine_id:>7}  {decoded.sequence:>3}  {text}"
    )
