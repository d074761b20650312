"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served with
their scripts and styles from the service itself."""
