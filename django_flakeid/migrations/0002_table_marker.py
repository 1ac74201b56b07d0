from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# The row that tells a lease table fresh from migrate from one emptied under live holders
# (flush, TRUNCATE): see django_flakeid.leases.
MARKER = {"layout": "", "datacenter_id": 0, "machine_id": 0}


def add_marker(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    NodeLease = apps.get_model("django_flakeid", "NodeLease")
    NodeLease.objects.using(schema_editor.connection.alias).get_or_create(**MARKER)


def remove_marker(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    NodeLease = apps.get_model("django_flakeid", "NodeLease")
    NodeLease.objects.using(schema_editor.connection.alias).filter(**MARKER).delete()


class Migration(migrations.Migration):
    dependencies = [("django_flakeid", "0001_initial")]

    operations = [migrations.RunPython(add_marker, remove_marker, elidable=False)]
