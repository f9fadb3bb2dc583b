"""Notifications (通知): console messages to staff, delivered in working hours."""
