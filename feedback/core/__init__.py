"""Pages anyone may see: the landing page and health check."""
