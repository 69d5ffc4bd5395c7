"""LLM answers (Markdown) as safe HTML for the staff review pages.

markdown-it-py renders CommonMark with raw HTML switched off (``<script>`` in an answer stays
text) plus tables and strikethrough; nh3 (the Ammonia sanitiser) then keeps only the tags and
attributes listed here and links with http(s)/mailto schemes, so nothing an LLM or a worker
wrote can run or load anything in a staff member's browser. Images are dropped (an answer must
not make the page fetch a remote URL).
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_markdown"]

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def render_markdown(text: str | None) -> str:
    """Sanitised HTML of ``text`` read as Markdown (empty string for None)."""
    html = _MD.render(text or "")
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow", filter_style_properties={"text-align"},
    )
