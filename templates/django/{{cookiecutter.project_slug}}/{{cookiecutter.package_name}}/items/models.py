from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

NAME_MAX_LENGTH = 200

# No control characters (PostgreSQL cannot store NUL, and none belong in a
# name) and no lone surrogates (they are not text).
printable_text = RegexValidator(
    r"[\x00-\x1f\x7f\ud800-\udfff]",
    inverse_match=True,
    message="Control characters and lone surrogates are not allowed.",
    code="invalid_characters",
)


class Item(models.Model):
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[printable_text])

    class Meta:
        db_table = "items"
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name

    def as_dict(self) -> dict[str, int | str]:
        return {"id": self.pk, "name": self.name}
