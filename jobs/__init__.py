"""Background jobs: a ``Job`` row per run, written by the worker, read by pages and the admin.

Write a job with :func:`jobs.runner.job_task`; start it with :func:`jobs.services.job_start`.
"""
