"""The example resource: items stored in the database."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
from django.http import HttpRequest, JsonResponse

from .. import errors
from ..api import ApiView, read_json
from ..http_errors import problem
from ..logging import get_logger
from ..tasks import BackgroundTasks
from .models import Item

LIST_LIMIT = 100
log = get_logger(__name__)
# Drained at worker exit, before the pool closes (apps.py).
background = BackgroundTasks()


class ItemCollection(ApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        items = [item.as_dict() for item in Item.objects.all()[:LIST_LIMIT]]
        return JsonResponse(items, safe=False)

    def post(self, request: HttpRequest) -> JsonResponse:
        payload = read_json(request)
        if not isinstance(payload, dict):
            return errors.validation_error(
                [problem(["body"], "model_attributes_type", "Input should be an object")]
            )
        if "name" not in payload:
            return errors.validation_error([problem(["body", "name"], "missing", "Field required")])
        if not isinstance(payload["name"], str):
            return errors.validation_error(
                [problem(["body", "name"], "string_type", "Input should be a string")]
            )
        item = Item(name=payload["name"])
        try:
            item.full_clean()
        except ValidationError as error:
            return errors.validation_error(_details(error))
        item.save()
        background.spawn(_count_items, name="count-items")
        return JsonResponse(item.as_dict(), status=201)


class ItemDetail(ApiView):
    def get(self, request: HttpRequest, item_id: int) -> JsonResponse:
        # Ids no column could hold (0, 2**70) find no row either: Django
        # answers an out-of-range lookup without asking the database.
        item = Item.objects.filter(pk=item_id).first()
        if item is None:
            return errors.not_found_response()
        return JsonResponse(item.as_dict())


def _count_items() -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    try:
        total = Item.objects.count()
    finally:
        connections.close_all()  # this thread's connection goes back to the pool
    log.info("items stored", total=total)


# Django's codes for what its fields check themselves, as the contract names
# them (pydantic's error types); the model's own validators use those names.
_TYPES = {"blank": "string_too_short", "max_length": "string_too_long"}


def _details(error: ValidationError) -> list[dict[str, Any]]:
    return [
        problem(
            ["body", field],
            _TYPES.get(str(failure.code), str(failure.code)),
            failure.message % (failure.params or {}),
        )
        for field, failures in error.error_dict.items()
        for failure in failures
    ]
