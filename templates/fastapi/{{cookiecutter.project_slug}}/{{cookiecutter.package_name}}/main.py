"""The application gunicorn serves (the Procfile's ``web`` process): the service's
routers, on the kit's runtime (``runtime/``), which brings the probes, the
metrics, the traces, the logs and the contract's errors to every route."""

from .api import items
from .runtime import create_app

app = create_app(title={{ cookiecutter.project_name | tojson }})
app.include_router(items.router)
