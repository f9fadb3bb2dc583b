"""Deadlines (期限): reminders, overdue marks and escalations (预警/督办), and the periodic upkeep jobs."""
