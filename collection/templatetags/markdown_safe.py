"""``{{ answer|markdown }}``: an answer's Markdown as sanitised HTML (``collection.markdown_render``)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from collection.markdown_render import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown(text: str | None) -> SafeString:
    return mark_safe(render_markdown(text))
