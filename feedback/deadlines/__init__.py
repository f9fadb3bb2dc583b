"""Deadlines (期限): reminders, overdue marks and escalations (预警/督办); provisional deadlines recomputed once a year is known."""
