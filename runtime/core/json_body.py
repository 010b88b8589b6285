"""Request bodies as JSON (docs/contract.md, section 3).

A body is taken only with a JSON media type (``application/json`` or any
``+json`` type); views answer any other with 415 ``unsupported_media_type``.
It is one JSON text as RFC 8259 defines it, encoded in UTF-8; anything else
raises ``json.JSONDecodeError``, which every view answers with 400
``invalid_json``. The standard library's ``json.loads`` alone would also take
a byte-order mark, UTF-16 and UTF-32, and ``NaN`` and ``Infinity``.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


def is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json``, parameters aside."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError(
            "Invalid UTF-8", body.decode("utf-8", "replace"), error.start
        ) from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("Nested too deeply", text, 0) from None
    except ValueError as error:
        # A number beyond int()'s digits (RFC 8259, section 9: a parser may limit them).
        raise json.JSONDecodeError(f"Number too large: {error}", text, 0) from None


def _not_json(constant: str) -> NoReturn:
    raise json.JSONDecodeError(f"{constant} is not JSON", constant, 0)
