"""Benchmarks (`make bench`): bulk data generation, a bench WSGI app, wrk-driven runs, reports.

Nothing here is collected by pytest (no test_*.py files): benchmarks run only on request.
"""
