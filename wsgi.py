"""The production entry point: ``gunicorn wsgi:app``."""

from recovery import create_app

app = create_app()
