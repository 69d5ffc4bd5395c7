"""How every page shows the data selection it used (reward runs, leaderboards, preference
datasets): one block, so each names the same things the same way."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .models import DataSelection


def selection_block(selection: DataSelection | None, *, without: str) -> SafeString:
    """The selection's name, version and id (linked), its counts, its rules as sentences and
    how many tasks each reason left out; ``without`` says what was used when there is none."""
    if selection is None:
        return format_html('<div class="ifllm-selection"><p><strong>No data selection.</strong> {}</p></div>', without)
    url = reverse("admin:collection_dataselection_change", args=[selection.pk])
    summary = selection.summary or {}
    rules = format_html_join("", "<li>{}</li>", ((line,) for line in summary.get("rules_text", [])))
    reasons = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
        ((r["label"], r["tasks"], r.get("only", "")) for r in summary.get("by_reason", {}).values()),
    )
    table = format_html(
        '<table class="ifllm-kv"><thead><tr><th>left out because</th><th>tasks</th><th>only this reason</th></tr>'
        "</thead><tbody>{}</tbody></table>", reasons) if reasons else mark_safe("<p>Nothing left out.</p>")
    gone = selection.n_kept_gone()
    withdrawn = format_html(
        ' <span class="ifllm-withdrawn">{} of the kept tasks withdrawn — deleted (a participant withdrew): '
        "{} remain and are what runs on it use now.</span>", gone, selection.n_kept - gone,
    ) if gone else ""
    return format_html(
        '<div class="ifllm-selection"><p><strong><a href="{}">{} v{}</a></strong> (data selection {}): '
        '{} of {} tasks kept, {} left out.{}</p><ul style="margin:.3em 0 .6em;padding-left:1.4em">{}</ul>{}</div>',
        url, selection.name, selection.version, selection.pk, selection.n_kept, selection.n_candidates,
        selection.n_left_out, withdrawn, rules, table,
    )
