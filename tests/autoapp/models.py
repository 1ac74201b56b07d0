from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models

from django_flakeid.fields import SnowflakeField
from django_flakeid.models import SnowflakeModel


class Comment(models.Model):
    """Attached to a row of any model; ``object_id`` holds that row's Snowflake ID."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    # 64 bits, no ID of its own (default=None), and a string in JSON like every other ID.
    object_id = SnowflakeField(editable=True, default=None)
    content_object = GenericForeignKey("content_type", "object_id")
    text = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = (models.Index(fields=("content_type", "object_id")),)

    def __str__(self) -> str:
        return self.text


class Author(models.Model):
    name = models.CharField(max_length=100)
    comments = GenericRelation(Comment)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    # Its through table is created by Django, with a key from the app's default auto field.
    co_authors = models.ManyToManyField(Author, blank=True, related_name="co_written")

    def __str__(self) -> str:
        return self.title


class Series(models.Model):
    name = models.CharField(max_length=100)
    # A through model of its own: keyed like any other model of the app.
    books = models.ManyToManyField(Book, through="Entry", related_name="series")

    class Meta:
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE)
    book = models.ForeignKey(Book, on_delete=models.CASCADE)
    position = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return f"{self.series} #{self.position}"


class Note(SnowflakeModel):
    text = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.text
