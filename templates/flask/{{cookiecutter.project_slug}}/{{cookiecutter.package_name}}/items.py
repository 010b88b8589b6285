"""The example resource: items stored in the database."""

from __future__ import annotations

import re
from json import JSONDecodeError
from typing import Any

from flask import Blueprint, current_app, request
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound, UnsupportedMediaType

from .db import EXTENSION, Database, get_session
from .errors import InvalidJson, ValidationFailed
from .http_errors import problem
from .json_body import is_json_media_type, parse_json
from .logging import get_logger
from .models import NAME_MAX_LENGTH, Item
from .tasks import BackgroundTasks

bp = Blueprint("items", __name__, url_prefix="/api/items")
log = get_logger(__name__)
TASKS = "{{ cookiecutter.package_name }}.tasks"

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
    return [item.as_dict() for item in items]


@bp.post("")
def create_item() -> tuple[ItemDict, int]:
    item = Item(name=_valid_name(_json_body()))
    session = get_session()
    session.add(item)
    session.commit()
    database: Database = current_app.extensions[EXTENSION]
    background: BackgroundTasks = current_app.extensions[TASKS]
    background.spawn(lambda: _count_items(database), name="count-items")
    return item.as_dict(), 201


def _count_items(database: Database) -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    with database.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Item))
    log.info("items stored", total=total)


# Ids that no row can have (not a positive number, beyond the column) match no
# route, so they are a 404 like unknown ones and never reach the database.
@bp.get(f"/<int(min=1, max={MAX_ID}):item_id>")
def get_item(item_id: int) -> ItemDict:
    item = get_session().get(Item, item_id)
    if item is None:
        raise NotFound()
    return item.as_dict()


def _json_body() -> Any:
    """The body as one JSON document in UTF-8, or a 400.

    The body is read within MAX_REQUEST_BODY_BYTES (Flask's MAX_CONTENT_LENGTH),
    otherwise a 413.
    """
    if not is_json_media_type(request.content_type):
        raise UnsupportedMediaType()
    try:
        return parse_json(request.get_data(cache=False))
    except JSONDecodeError:
        raise InvalidJson() from None


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
