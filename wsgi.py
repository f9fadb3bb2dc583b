"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""
from feedback import create_app

app = create_app()
