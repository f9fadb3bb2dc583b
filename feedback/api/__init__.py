"""The JSON API (/api/v1) for window systems, terminals, hotline and provincial platforms."""
