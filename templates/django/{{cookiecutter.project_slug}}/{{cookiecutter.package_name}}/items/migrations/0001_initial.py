import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        max_length=200,
                        validators=[
                            django.core.validators.RegexValidator(
                                "[\\x00-\\x1f\\x7f]",
                                code="string_pattern_mismatch",
                                inverse_match=True,
                                message="Control characters are not allowed.",
                            ),
                            django.core.validators.RegexValidator(
                                "[\\ud800-\\udfff]",
                                code="string_unicode",
                                inverse_match=True,
                                message="Lone surrogates are not text.",
                            ),
                        ],
                    ),
                ),
            ],
            options={
                "db_table": "items",
                "ordering": ("id",),
            },
        ),
    ]
