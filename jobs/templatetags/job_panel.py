"""``{% job_panel job refresh="curves,table" resume="Resume" %}``: the live job panel of a page.

One panel for every page that shows a job (the job's own page and the reward-run, training-run
and evaluation pages): status, progress, current step, the failure's one-line cause with the
traceback behind a toggle, and Cancel / Resume buttons for users who may run the job's kind.
``static/jobs/live_job.js`` follows the job while it runs and swaps in the page's fields named
in ``refresh`` (curves, tables) as they grow.
"""

from __future__ import annotations

from typing import Any

from django import template

from jobs.models import Job
from jobs.services import job_user_may_run

register = template.Library()


@register.inclusion_tag("admin/jobs/_job_panel.html", takes_context=True)
def job_panel(
    context: template.Context, job: Job | None, refresh: str = "", resume: str = "Run again"
) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    may_run = job is not None and user is not None and user.is_authenticated and job_user_may_run(user, job.kind)
    return {
        "job": job,
        "refresh": refresh,
        "resume": resume,
        "may_run": may_run,
        "next": request.get_full_path() if request is not None else "",
        "csrf_token": context.get("csrf_token"),
    }
