"""Runs inside the scratch project of tests/test_switching.py; prints JSON on stdout.

``seed`` writes rows and references while the keys are still sequential. ``report``, run after
the switch, writes new rows the ways an application does and reads back what the database
holds: every row, the key and foreign key columns, what each foreign key accepts, how old keys
decode. ``columns`` reads only the columns; ``add`` tries a many-to-many ``add()`` and rolls
it back.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.db import DatabaseError, connection, models, transaction  # noqa: E402

from django_flakeid import conf  # noqa: E402
from django_flakeid.fields import SnowflakeField  # noqa: E402

APP_LABELS = ("shop", "crm")
# Above every key the tests write, and too wide for a 32-bit column.
DANGLING = (1 << 62) + 12345
AFTER_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class Rollback(Exception):
    pass


def model(label: str) -> Any:
    # The scratch project's models are not importable where this module is type-checked.
    return apps.get_model(label)


def tables() -> list[type[models.Model]]:
    found = [
        each
        for label in APP_LABELS
        for each in apps.get_app_config(label).get_models(include_auto_created=True)
    ]
    return sorted(found, key=lambda each: each._meta.db_table)


def key_column(table: type[models.Model]) -> str:
    assert table._meta.pk is not None
    return str(table._meta.pk.column)


def rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of the two apps' tables, each as {column: value}, in key order."""
    found = {}
    for table in tables():
        columns = sorted(str(field.column) for field in table._meta.local_concrete_fields)
        found[table._meta.db_table] = sorted(
            (
                dict(zip(columns, values, strict=True))
                for values in table._default_manager.values_list(*columns)
            ),
            key=lambda row: row[key_column(table)],
        )
    return found


def as_serial_columns() -> None:
    """Make crm's keys serial columns with a sequence, as Django made them before 4.1."""
    with connection.cursor() as cursor:
        for table in tables():
            name = table._meta.db_table
            if table._meta.app_label != "crm" or not isinstance(table._meta.pk, models.AutoField):
                continue
            cursor.execute(f"ALTER TABLE {name} ALTER COLUMN id DROP IDENTITY")
            cursor.execute(f"CREATE SEQUENCE {name}_id_seq OWNED BY {name}.id")
            cursor.execute(
                f"ALTER TABLE {name} ALTER COLUMN id SET DEFAULT nextval('{name}_id_seq')"
            )


def seed() -> dict[str, Any]:
    if connection.vendor == "postgresql":
        as_serial_columns()
    customer, product, order = model("shop.Customer"), model("shop.Product"), model("shop.Order")
    contact, call = model("crm.Contact"), model("crm.Call")
    ada = customer.objects.create(name="ada")
    bob = customer.objects.create(name="bob", referred_by=ada)
    # Keys far up their types' ranges: the switch keeps them and widens what refers to them.
    big = customer.objects.create(id=10**12, name="big")
    pen = product.objects.create(name="pen")
    ink = product.objects.create(id=32000, name="ink")
    first = order.objects.create(customer=ada)
    first.products.add(pen, ink)
    second = order.objects.create(customer=big)
    second.products.add(ink)
    model("shop.Profile").objects.create(customer=bob, bio="old")
    boss = contact.objects.create(customer=ada, account=ada)
    clerk = contact.objects.create(id=2_147_483_000, customer=big, manager=boss)
    clerk.friends.add(boss)
    clerk.products.add(ink)
    boss.products.add(pen)
    call.objects.create(contact=clerk, order=first, note="old")
    acme = model("crm.Partner").objects.create(customer=bob, company="acme")
    model("crm.Visit").objects.create(partner=acme)
    named = {"ada": ada, "bob": bob, "big": big, "pen": pen, "ink": ink, "first": first}
    named |= {"second": second, "boss": boss, "clerk": clerk, "acme": acme}
    return {"named": {name: each.pk for name, each in named.items()}, "rows": rows()}


def write_new_rows(old: dict[str, int]) -> dict[str, Any]:
    """New rows made by save(), create(), bulk_create() and add(), referring to old rows."""
    customer, product, order = model("shop.Customer"), model("shop.Product"), model("shop.Order")
    contact, visit = model("crm.Contact"), model("crm.Visit")
    cat = customer(name="cat", referred_by_id=old["ada"])
    unsaved_pk = cat.pk
    cat.save()
    dan = customer.objects.create(name="dan", referred_by=cat)
    cup, mug = product.objects.bulk_create([product(name="cup"), product(name="mug")])
    third = order.objects.create(customer_id=old["big"])
    third.products.add(cup, old["ink"])
    order.objects.get(pk=old["first"]).products.add(mug)
    model("shop.Profile").objects.create(customer=dan, bio="new")
    temp = contact.objects.create(customer=dan, manager_id=old["clerk"])
    temp.friends.add(old["boss"])
    temp.products.add(cup, old["pen"])
    contact.objects.get(pk=old["clerk"]).products.add(mug)
    model("crm.Call").objects.create(contact=temp, order_id=old["first"], note="new")
    corp = model("crm.Partner").objects.create(customer=cat, company="corp")
    visit.objects.bulk_create([visit(partner=corp), visit(partner_id=old["acme"])])
    named = {"cat": cat, "dan": dan, "cup": cup, "mug": mug, "third": third, "temp": temp}
    named |= {"corp": corp}
    return {"named": {name: each.pk for name, each in named.items()}, "unsaved_pk": unsaved_pk}


def read_back(named: dict[str, int]) -> dict[str, Any]:
    """References as fresh queries read them, for the rows the two steps named."""
    customer, order, contact = model("shop.Customer"), model("shop.Order"), model("crm.Contact")

    def keys(manager: Any) -> list[int]:
        return sorted(manager.values_list("pk", flat=True))

    return {
        "cat.referred_by": customer.objects.get(pk=named["cat"]).referred_by_id,
        "dan.referred_by": customer.objects.get(pk=named["dan"]).referred_by_id,
        "ada.referrals": keys(customer.objects.get(pk=named["ada"]).referrals),
        "dan.profile": model("shop.Profile").objects.get(customer=named["dan"]).pk,
        "third.customer": order.objects.get(pk=named["third"]).customer_id,
        "third.products": keys(order.objects.get(pk=named["third"]).products),
        "first.products": keys(order.objects.get(pk=named["first"]).products),
        "temp.manager": contact.objects.get(pk=named["temp"]).manager_id,
        "temp.friends": keys(contact.objects.get(pk=named["temp"]).friends),
        "boss.friends": keys(contact.objects.get(pk=named["boss"]).friends),
        "temp.products": keys(contact.objects.get(pk=named["temp"]).products),
        "clerk.products": keys(contact.objects.get(pk=named["clerk"]).products),
        "temp.calls": [each.order_id for each in contact.objects.get(pk=named["temp"]).calls.all()],
        "corp.visits": len(model("crm.Visit").objects.filter(partner=named["corp"])),
        "acme.visits": len(model("crm.Visit").objects.filter(partner=named["acme"])),
    }


def references() -> dict[str, str]:
    """{table.column: the table it refers to} for every foreign key and one-to-one column."""
    return {
        f"{table._meta.db_table}.{field.column}": field.related_model._meta.db_table  # type: ignore[union-attr]
        for table in tables()
        for field in table._meta.local_concrete_fields
        if field.is_relation
    }


def foreign_keys() -> dict[str, str]:
    """What each foreign key column does with a value no row has: the error, or "accepted"."""
    outcome = {}
    for table in tables():
        some = table._default_manager.order_by("pk").first()
        for field in table._meta.local_concrete_fields:
            if not field.is_relation:
                continue
            name = f"{table._meta.db_table}.{field.column}"
            try:
                with transaction.atomic():
                    table._default_manager.filter(pk=some.pk).update(**{field.attname: DANGLING})
            except DatabaseError as error:
                outcome[name] = type(error).__name__
            else:
                outcome[name] = "accepted"
    return outcome


def columns() -> dict[str, dict[str, Any]]:
    """{table.column: {"type": ..., "auto": the database fills it}} of every integer column."""
    wanted = [*(table._meta.db_table for table in tables()), "django_migrations"]
    found: dict[str, dict[str, Any]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT table_name, column_name, data_type, is_identity = 'YES', column_default, "
                "pg_get_serial_sequence(quote_ident(table_name), column_name) "
                "FROM information_schema.columns WHERE table_schema = current_schema()"
            )
            for table, column, kind, identity, default, sequence in cursor.fetchall():
                auto = bool(identity or default or sequence)
                found[f"{table}.{column}"] = {"type": kind, "auto": auto}
        elif connection.vendor == "mysql":
            cursor.execute(
                "SELECT table_name, column_name, data_type, extra FROM information_schema.columns "
                "WHERE table_schema = DATABASE()"
            )
            for table, column, kind, extra in cursor.fetchall():
                found[f"{table}.{column}"] = {"type": kind, "auto": "auto_increment" in extra}
        else:
            for table in wanted:
                cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table])
                (sql,) = cursor.fetchone()
                cursor.execute(f'PRAGMA table_info("{table}")')
                for _, column, kind, _, _, pk in cursor.fetchall():
                    auto = bool(pk) and "AUTOINCREMENT" in sql.upper()
                    found[f"{table}.{column}"] = {"type": kind.lower(), "auto": auto}
    return {
        name: value
        for name, value in found.items()
        if name.split(".")[0] in wanted and "int" in value["type"]
    }


def legacy() -> dict[str, Any]:
    """How each Snowflake key treats the oldest key of its table, and what lookups match."""
    found: dict[str, Any] = {}
    tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    for table in tables():
        key = table._meta.pk
        if not isinstance(key, SnowflakeField):
            continue
        manager = table._default_manager
        oldest = manager.order_by("pk").values_list("pk", flat=True)[0]
        try:
            key.decode(oldest)
        except Exception as error:  # the report names whatever it was
            decoded = type(error).__name__
        else:
            decoded = "decoded"

        def matching(**lookup: Any) -> list[int]:
            return sorted(manager.filter(**lookup).values_list("pk", flat=True))  # noqa: B023

        found[table._meta.db_table] = {
            "decode_oldest": decoded,
            "generated_at_oldest": key.generated_at(oldest),
            "after_2000": matching(pk__generated_at__gte=AFTER_2000),
            "before_tomorrow": matching(pk__generated_at__lt=tomorrow),
            "no_time": matching(pk__generated_at__isnull=True),
            "with_time": matching(pk__generated_at__isnull=False),
        }
    return found


def report(old: dict[str, int]) -> dict[str, Any]:
    new = write_new_rows(old)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM django_migrations")
        recorded = sorted(key for (key,) in cursor.fetchall())
    return {
        "new": new,
        "read_back": read_back(old | new["named"]),
        "rows": rows(),
        "keys": {table._meta.db_table: type(table._meta.pk).__name__ for table in tables()},
        "references": references(),
        "columns": columns(),
        "foreign_keys": foreign_keys(),
        "legacy": legacy(),
        "recorded_migrations": recorded,
        "min_snowflake_id": conf.get_layout().min_snowflake_id,
    }


def add() -> dict[str, Any]:
    """Two products added to a new order, rolled back: the error, or the rows it wrote."""
    order, product = model("shop.Order"), model("shop.Product")
    through = order.products.through
    outcome: dict[str, Any] = {"error": None}
    try:
        with transaction.atomic():
            customer = model("shop.Customer").objects.create(name="eve")
            new = order.objects.create(customer=customer)
            new.products.add(*product.objects.bulk_create([product(name="a"), product(name="b")]))
            outcome["through_keys"] = sorted(
                through.objects.filter(order=new).values_list("pk", flat=True)
            )
            raise Rollback
    except Rollback:
        pass
    except DatabaseError as error:
        outcome["error"] = type(error).__name__
    return outcome


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "seed":
        result = seed()
    elif command == "add":
        result = add()
    elif command == "columns":
        result = columns()
    else:
        result = report(json.loads(sys.argv[2]))
    json.dump(result, sys.stdout, default=str)
