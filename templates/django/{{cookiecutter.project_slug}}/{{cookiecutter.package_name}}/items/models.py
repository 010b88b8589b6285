from __future__ import annotations

from django.db import models

NAME_MAX_LENGTH = 200


class Item(models.Model):
    name = models.CharField(max_length=NAME_MAX_LENGTH)

    class Meta:
        db_table = "items"
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name

    def as_dict(self) -> dict[str, int | str]:
        return {"id": self.pk, "name": self.name}
