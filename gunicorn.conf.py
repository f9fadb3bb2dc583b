"""gunicorn reads this file from the working directory: `gunicorn -w 4 wsgi:app` needs no flags.

The Server header says nothing of the software behind it (a hostile review's finding: a
banner helps an attacker pick exploits and helps nobody else).
"""
import gunicorn

gunicorn.SERVER = "feedback"
