"""The WSGI application gunicorn serves (the Procfile's ``web`` process)."""

from .app import create_app

app = create_app()
