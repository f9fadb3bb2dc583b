"""Accounts: users, roles, department scopes, API keys."""
