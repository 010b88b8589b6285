"""WSGI middleware that gives the application a chunked request body with its length.

Neither framework reads one correctly on its own: Django reads CONTENT_LENGTH bytes
of ``wsgi.input`` and sees a chunked body as empty, and werkzeug stops one at
MAX_CONTENT_LENGTH without saying it was longer. No maintained middleware does
this for both, so here it is.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any


class ChunkedBody:
    """Reads a chunked body up to one byte past ``limit`` and hands it on as a body
    with a CONTENT_LENGTH: one over the limit then meets the framework's own 413,
    and nothing past the limit is held in memory."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # Described as what it now is, a body of known length: werkzeug
            # ignores CONTENT_LENGTH while the request says it is chunked.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)  # type: ignore[no-any-return]
