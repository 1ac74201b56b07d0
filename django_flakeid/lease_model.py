"""The table of leased machine IDs (``FLAKEID = {"machine_id": "lease"}``).

It lives apart from ``models.py`` because the lease code needs it while ``models.py`` needs
the fields, which need the running node.
"""

from __future__ import annotations

from django.db import models


class NodeLease(models.Model):
    """One machine ID of one datacenter of one layout, and which process holds it until when.

    ``high_water_ms`` is the last millisecond the holder has announced it may stamp; whoever
    takes the machine ID next stamps only later milliseconds, whatever the hosts' clocks say.
    It is 0 on a row no process has held yet. The row with an empty ``layout`` marks a table
    fresh from migrate; once it is gone (the table was emptied, maybe under live holders), the
    first holder of a row never held starts one TTL later.
    """

    id = models.BigAutoField(primary_key=True)
    layout = models.CharField(max_length=80, help_text="The layout's widths and epoch.")
    datacenter_id = models.PositiveIntegerField()
    machine_id = models.PositiveIntegerField()
    holder = models.CharField(
        max_length=120, blank=True, default="", help_text="host:pid:token, empty when free."
    )
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    high_water_ms = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "node lease"
        ordering = ("layout", "datacenter_id", "machine_id")
        constraints = (
            models.UniqueConstraint(
                fields=("layout", "datacenter_id", "machine_id"),
                name="django_flakeid_nodelease_node",
            ),
        )

    def __str__(self) -> str:
        state = f"held by {self.host} pid {self.pid}" if self.holder else "free"
        return f"datacenter {self.datacenter_id} machine {self.machine_id} ({state})"
