"""Ratings (评价) of service records (办件): counter tablet, link/QR, API."""
