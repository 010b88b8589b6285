from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

NAME_MAX_LENGTH = 200

# No control characters (PostgreSQL cannot store NUL, and none belong in a
# name) and no lone surrogates (they are not text). The codes are the
# contract's validation error types.
no_control_characters = RegexValidator(
    r"[\x00-\x1f\x7f]",
    inverse_match=True,
    message="Control characters are not allowed.",
    code="string_pattern_mismatch",
)
no_lone_surrogates = RegexValidator(
    r"[\ud800-\udfff]",
    inverse_match=True,
    message="Lone surrogates are not text.",
    code="string_unicode",
)


class Item(models.Model):
    name = models.CharField(
        max_length=NAME_MAX_LENGTH, validators=[no_control_characters, no_lone_surrogates]
    )

    class Meta:
        db_table = "items"
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name
