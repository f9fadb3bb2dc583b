"""Privacy duties across areas: citizens' contact data erased after the retention period."""
