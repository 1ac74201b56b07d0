from __future__ import annotations

from django.db import models

from django_flakeid.models import SnowflakeModel


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    # Its through table is created by Django, with a key from the app's default auto field.
    co_authors = models.ManyToManyField(Author, blank=True, related_name="co_written")

    def __str__(self) -> str:
        return self.title


class Note(SnowflakeModel):
    text = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.text
