"""The working console of handlers, supervisors and window staff."""
