"""The example resource: items stored in the database.

Delete it to start from an empty service: this module, its line in app.py,
``Item`` in models.py, its migration and tests/test_items.py (README.md).
"""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

from flask import Blueprint, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import NotFound

from ..models import NAME_MAX_LENGTH, Item
from ..runtime import (
    ValidationFailed,
    deliver,
    get_logger,
    get_session,
    get_sessions,
    get_settings,
    problem,
    spawn,
)

bp = Blueprint("items", __name__, url_prefix="/api/items")
log = get_logger(__name__)

LIST_LIMIT = 100
MAX_ID = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL

ItemDict = dict[str, int | str]
# PostgreSQL cannot store NUL, and no control character belongs in a name; a
# lone surrogate (valid as a JSON escape) is no text at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@bp.get("")
def list_items() -> list[ItemDict]:
    items = get_session().scalars(select(Item).order_by(Item.id).limit(LIST_LIMIT))
    return [_as_dict(item) for item in items]


@bp.post("")
def create_item() -> tuple[ItemDict, int]:
    # request.json is a 415 for another media type, a 400 for what is not JSON.
    item = Item(name=_valid_name(request.json))
    session = get_session()
    session.add(item)
    session.commit()
    spawn(functools.partial(_count_items, get_sessions()), name="count-items")
    if webhook_url := get_settings().webhook_url:
        # After the response, retried, counted and logged when it fails: the
        # pattern for any message to another service (README.md, "Calling other services").
        spawn(functools.partial(deliver, "webhook", webhook_url, _created(item)), name="webhook")
    return _as_dict(item), 201


def _created(item: Item) -> dict[str, Any]:
    """The webhook's event; its id, the same on every attempt, lets the receiver
    ignore a repeat."""
    return {"id": uuid.uuid4().hex, "type": "item.created", "item": _as_dict(item)}


def _count_items(sessions: sessionmaker[Session]) -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Item))
    log.info("items stored", total=total)


# Ids that no row can have (not a positive number, beyond the column) match no
# route, so they are a 404 like unknown ones and never reach the database.
@bp.get(f"/<int(min=1, max={MAX_ID}):item_id>")
def get_item(item_id: int) -> ItemDict:
    item = get_session().get(Item, item_id)
    if item is None:
        raise NotFound()
    return _as_dict(item)


def _as_dict(item: Item) -> ItemDict:
    return {"id": item.id, "name": item.name}


def _valid_name(payload: Any) -> str:
    # One string field does not call for a schema library; the problems are
    # named as pydantic names them (the contract's validation error types).
    if not isinstance(payload, dict):
        raise ValidationFailed(
            [problem(["body"], "model_attributes_type", "Input should be an object")]
        )
    name = payload.get("name")
    if "name" not in payload:
        kind, message = "missing", "Field required"
    elif not isinstance(name, str):
        kind, message = "string_type", "Input should be a string"
    elif not name:
        kind, message = "string_too_short", "Input should not be empty"
    elif len(name) > NAME_MAX_LENGTH:
        kind, message = "string_too_long", f"Input should have at most {NAME_MAX_LENGTH} characters"
    elif _SURROGATE.search(name):
        kind, message = "string_unicode", "Input should contain no lone surrogates"
    elif _CONTROL.search(name):
        kind, message = "string_pattern_mismatch", "Input should contain no control characters"
    else:
        return name
    raise ValidationFailed([problem(["body", "name"], kind, message)])
