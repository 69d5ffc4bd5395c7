"""``{% load staff_data %}{% has_tasks as has_tasks %}``: whether there is any task at all.

A tag rather than a context variable so that every staff page can show the "how to get data"
hint (``staff/no_data.html``) from its template alone, without each view computing it.
"""

from django import template

from collection.selectors import tasks_exist

register = template.Library()


@register.simple_tag
def has_tasks() -> bool:
    return tasks_exist()
