"""Demo data: a realistic city for `make run` (development only)."""
