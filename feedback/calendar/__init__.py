"""The working-day calendar (工作日历): statutory holidays, make-up workdays, deadlines."""
