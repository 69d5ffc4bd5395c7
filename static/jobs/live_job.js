// Follows the job of a page's job panel (templates/admin/jobs/_job_panel.html) while it runs.
// Every 2 s it reads /api/jobs/<id>/; when status, progress, step or log changed it fetches the
// page again, updates the panel's texts and swaps in the fields named in data-refresh
// (".field-<name>": curves, tables, log), so the reader keeps their place. When the job ends the page reloads once, so the
// results, the failure's cause and the Resume button appear.
(function () {
  "use strict";

  function atEnd(el) { return el.scrollTop + el.clientHeight >= el.scrollHeight - 4; }

  function swap(oldEl, newEl) {
    const scrolled = [...oldEl.querySelectorAll("pre")].map(atEnd);
    oldEl.replaceWith(newEl);
    newEl.querySelectorAll("pre").forEach((pre, i) => { if (scrolled[i]) pre.scrollTop = pre.scrollHeight; });
  }

  function follow(panel) {
    const url = panel.dataset.jobUrl;
    const fields = (panel.dataset.refresh || "").split(",").map((s) => s.trim()).filter(Boolean);
    let state = panel.dataset.state;

    async function refresh() {
      const resp = await fetch(window.location.href, {credentials: "same-origin"});
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      // The panel's texts are updated in place, never the panel itself: its Cancel button must
      // stay the same element while the reader moves the mouse to it.
      const fresh = doc.getElementById(panel.id);
      if (fresh) {
        for (const sel of [".job-status", ".job-pct", ".job-message"]) {
          const from = fresh.querySelector(sel), to = panel.querySelector(sel);
          if (from && to) to.textContent = from.textContent;
        }
        const bar = panel.querySelector("progress"), value = fresh.querySelector("progress");
        if (bar && value) bar.value = value.value;
      }
      for (const name of fields) {
        const next = doc.querySelector(".field-" + name);
        const now = document.querySelector(".field-" + name);
        if (next && now) swap(now, document.importNode(next, true));
      }
    }

    async function poll() {
      let job;
      try {
        const resp = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!resp.ok) { setTimeout(poll, 5000); return; }
        job = await resp.json();
      } catch (e) { setTimeout(poll, 5000); return; }
      if (job.is_finished) { window.location.reload(); return; }
      const now = [job.status, job.progress, job.message, (job.log_tail || "").length].join("|");
      if (now !== state) {
        state = now;
        try { await refresh(); } catch (e) { /* next poll tries again */ }
      }
      setTimeout(poll, 2000);
    }
    setTimeout(poll, 2000);
  }

  function start() {
    document.querySelectorAll(".ifllm-job-panel[data-live='1']").forEach((panel) => {
      if (panel.dataset.following) return;
      panel.dataset.following = "1";
      follow(panel);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
