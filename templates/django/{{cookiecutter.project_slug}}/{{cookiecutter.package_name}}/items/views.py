"""The example resource: items stored in the database.

Delete it to start from an empty service: this app, its entries in
settings.py and urls.py, and tests/test_items.py (README.md).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views import View

from ..runtime import (
    ValidationFailed,
    deliver,
    get_logger,
    get_settings,
    problem,
    read_json,
    spawn,
)
from .models import Item

LIST_LIMIT = 100
log = get_logger(__name__)


class ItemCollection(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        items = [_as_dict(item) for item in Item.objects.all()[:LIST_LIMIT]]
        return JsonResponse(items, safe=False)

    def post(self, request: HttpRequest) -> JsonResponse:
        payload = read_json(request)  # a 415 for another media type, a 400 for not JSON
        if not isinstance(payload, dict):
            raise ValidationFailed(
                [problem(["body"], "model_attributes_type", "Input should be an object")]
            )
        if "name" not in payload:
            raise ValidationFailed([problem(["body", "name"], "missing", "Field required")])
        if not isinstance(payload["name"], str):
            raise ValidationFailed(
                [problem(["body", "name"], "string_type", "Input should be a string")]
            )
        item = Item(name=payload["name"])
        try:
            item.full_clean()
        except ValidationError as error:
            raise ValidationFailed(_details(error)) from None
        item.save()
        spawn(_count_items, name="count-items")
        if webhook_url := get_settings().webhook_url:
            # After the response, retried, counted and logged when it fails: the pattern
            # for any message to another service (README.md, "Calling other services").
            event = {"id": uuid.uuid4().hex, "type": "item.created", "item": _as_dict(item)}
            spawn(functools.partial(deliver, "webhook", webhook_url, event), name="webhook")
        return JsonResponse(_as_dict(item), status=201)


class ItemDetail(View):
    def get(self, request: HttpRequest, item_id: int) -> JsonResponse:
        # Ids no column could hold (0, 2**70) find no row either: Django
        # answers an out-of-range lookup without asking the database.
        item = Item.objects.filter(pk=item_id).first()
        if item is None:
            raise Http404
        return JsonResponse(_as_dict(item))


def _as_dict(item: Item) -> dict[str, int | str]:
    return {"id": item.pk, "name": item.name}


def _count_items() -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    log.info("items stored", total=Item.objects.count())


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
