"""Signals other apps may listen to, so collection needs no import of them.

``task_completed`` is sent inside the completing transaction; receivers that start work should
defer it with ``transaction.on_commit`` (the crowd app computes quality control that way).
"""

from django.dispatch import Signal

#: sent with ``task=<collection.models.Task>`` when a worker completes a task
task_completed = Signal()
