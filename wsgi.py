"""The production entry point: ``gunicorn wsgi:app``."""

import gc

from recovery import create_app

app = create_app()
# What importing and building the app made lives as long as the process: keep it out of every
# garbage collection (each worker imports this after gunicorn forks it). A collection then scans
# only what requests allocate: in a reset request's loop, 10 us a request became 2.5.
gc.freeze()
