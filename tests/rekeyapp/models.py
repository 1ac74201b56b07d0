from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Parent(models.Model):
    """The table to re-key: keys 1, 2, 3, ... are its legacy rows."""

    name = models.CharField(max_length=50, blank=True)
    # The target of a foreign key that refers to it, not to the key: left as it is.
    code = models.CharField(max_length=20, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_on = models.DateField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    friends = models.ManyToManyField("self", blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="parents")

    def __str__(self) -> str:
        return self.name


class ParentProxy(Parent):
    class Meta:
        proxy = True


class Special(Parent):
    """A multi-table child: its key is a one-to-one to Parent, and holds Parent's keys."""

    rank = models.IntegerField(default=0)


class Child(models.Model):
    parent = models.ForeignKey(Parent, on_delete=models.CASCADE, related_name="kids")
    # No reverse accessor, and to a proxy: a reference all the same.
    proxied = models.ForeignKey(
        ParentProxy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_code = models.ForeignKey(
        Parent,
        null=True,
        blank=True,
        to_field="code",
        on_delete=models.SET_NULL,
        related_name="coded",
    )

    def __str__(self) -> str:
        return f"Child of {self.parent_id}"


class Profile(models.Model):
    parent = models.OneToOneField(Parent, on_delete=models.CASCADE, related_name="profile")

    def __str__(self) -> str:
        return f"Profile of {self.parent_id}"


class SpecialNote(models.Model):
    """Refers to the multi-table child, whose keys are Parent's."""

    special = models.ForeignKey(Special, on_delete=models.CASCADE, related_name="notes")

    def __str__(self) -> str:
        return f"Note on {self.special_id}"


class Comment(models.Model):
    """A generic relation whose object_id is a 64-bit integer."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.BigIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    class Meta:
        indexes = (models.Index(fields=("content_type", "object_id")),)

    def __str__(self) -> str:
        return f"Comment on {self.object_id}"


class Mention(models.Model):
    """A generic relation that holds the key as text, as django.contrib.comments does."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_pk = models.CharField(max_length=40)
    target = GenericForeignKey("content_type", "object_pk")

    def __str__(self) -> str:
        return f"Mention of {self.object_pk}"


class ShortComment(models.Model):
    """A generic relation too narrow for Snowflake IDs except on SQLite, as taggit's is."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    def __str__(self) -> str:
        return f"Short comment on {self.object_id}"


class Loose(models.Model):
    """Referred to by a single-column ForeignObject over a 32-bit column."""

    def __str__(self) -> str:
        return f"Loose {self.pk}"


class LooseRef(models.Model):
    loose_id = models.IntegerField()
    loose = models.ForeignObject(
        Loose, from_fields=["loose_id"], to_fields=["id"], on_delete=models.DO_NOTHING
    )

    def __str__(self) -> str:
        return f"Ref to {self.loose_id}"


class Pair(models.Model):
    """Referred to through two columns, one of them its key."""

    number = models.IntegerField()

    class Meta:
        constraints = (models.UniqueConstraint(fields=("id", "number"), name="rekey_pair"),)

    def __str__(self) -> str:
        return f"Pair {self.pk}/{self.number}"


class PairRef(models.Model):
    pair_id = models.BigIntegerField()
    pair_number = models.IntegerField()
    pair = models.ForeignObject(
        Pair,
        from_fields=["pair_id", "pair_number"],
        to_fields=["id", "number"],
        on_delete=models.DO_NOTHING,
    )

    def __str__(self) -> str:
        return f"Ref to {self.pair_id}/{self.pair_number}"


class Outside(models.Model):
    """Referred to by a table Django does not manage."""

    def __str__(self) -> str:
        return f"Outside {self.pk}"


class OutsideReport(models.Model):
    outside = models.ForeignKey(Outside, on_delete=models.DO_NOTHING)

    class Meta:
        managed = False
        db_table = "rekeyapp_outside_report"

    def __str__(self) -> str:
        return f"Report on {self.outside_id}"
