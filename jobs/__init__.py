"""The job process: APScheduler jobs that call service functions.

Exactly one scheduler process runs (`flask --app wsgi scheduler`); web workers never
start one. Every job is also a CLI command: `flask --app wsgi jobs run NAME [--now ISO]`.
"""
