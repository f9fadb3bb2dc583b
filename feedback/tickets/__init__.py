"""Tickets (工单) for bad reviews and complaints."""
