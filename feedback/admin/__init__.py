"""Administrators' pages: home, users, API keys, audit log."""
