from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=200)

    class Meta:
        app_label = "bench_items"
        db_table = "items"
        managed = False
