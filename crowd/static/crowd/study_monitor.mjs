// The study monitor (crowd/templates/crowd/study_monitor.html): draws the figures the page came
// with, then asks the JSON endpoint for new ones every few seconds and redraws the tables in
// place (no reload, the reader keeps their place). Polling stops while the tab is hidden and
// resumes at once when it is shown again.

const root = document.getElementById("study-monitor");
const url = root.dataset.url;
const pollMs = Number(root.dataset.pollMs) || 4000;

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)} %`);
const num = (x) => (x === null || x === undefined ? "–" : String(x));

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// A small bar; the number beside it carries the meaning (the bar is decoration for screen readers).
function bar(share, full) {
  const td = document.createElement("td");
  const outer = document.createElement("span");
  outer.className = "monitor-bar" + (full ? " full" : "");
  outer.setAttribute("aria-hidden", "true");
  const inner = document.createElement("span");
  inner.style.width = `${Math.max(0, Math.min(1, share || 0)) * 100}%`;
  outer.append(inner);
  td.append(outer);
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  const trs = rows.map((cells) => {
    const tr = document.createElement("tr");
    const [head, ...rest] = cells;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = head;
    tr.append(th, ...rest);
    return tr;
  });
  body.replaceChildren(...trs);
}

function draw(d) {
  document.getElementById("monitor-sessions").textContent = d.n_sessions;
  document.getElementById("monitor-tasks").textContent = d.n_tasks;
  document.getElementById("monitor-empty").hidden = d.n_sessions > 0;
  const total = d.n_sessions || 0;
  fill("stages", d.stages.map((s) => {
    const row = [s.label, cell(num(s.n), "num"), bar(total ? s.n / total : 0)];
    return row;
  }));
  document.querySelectorAll("#stages tbody tr").forEach((tr, i) => { tr.dataset.stage = d.stages[i].stage; });
  fill("funnel", d.funnel.map((f) => [f.label, cell(num(f.reached), "num"), cell(pct(f.of_entered), "num"),
    cell(pct(f.from_previous), "num"), bar(f.of_entered)]));
  fill("mode-quotas", d.mode_quotas.map((q) => [q.name, cell(`${q.used} / ${q.quota}`, "num"),
    cell(num(q.this_study), "num"), bar(q.share, q.full)]));
  fill("model-quotas", d.model_quotas.length ? d.model_quotas.map((q) => [q.name, cell(`${q.used} / ${q.quota}`, "num"),
    bar(q.share, q.full)]) : [["no chat model enabled", cell(""), cell("")]]);
  fill("times", d.stage_times.map((t) => [t.label, cell(duration(t.median_s), "num"), cell(`${t.n}`, "num")]));

  const c = d.calibration;
  document.getElementById("calibration-rate").textContent = c.n_attempts
    ? `${pct(c.pass_rate)} of ${c.n_attempts} attempts passed (${c.n_failed} failed)` : "No calibration attempt yet.";
  fill("calibration-reasons", c.reasons.map((r) => [r.label, cell(num(r.n), "num"), bar(r.share_of_failed)]));

  const q = d.qc;
  document.getElementById("qc-rate").textContent = q.n_with_qc
    ? `${pct(q.flag_rate)} flagged: ${q.n_flagged} of ${q.n_with_qc} completed tasks with QC` +
      (q.n_pending ? ` (${q.n_pending} still computing)` : "")
    : (q.n_completed ? `${q.n_completed} completed, QC not computed yet` : "No completed task yet.");
  fill("qc-flags", q.flags.length ? q.flags.map((f) => [f.label || f.code, cell(num(f.n), "num")]) : [["none", cell("")]]);

  const money = document.getElementById("money");
  if (!d.private) {
    money.innerHTML = '<p class="help">Payment figures need the researcher role (access.view_private).</p>';
  } else {
    const cur = d.currency ? ` ${d.currency}` : "";
    const p = d.pay, m = d.money;
    const verdict = p.below_minimum === null ? "" : (p.below_minimum ? " — below the platform's minimum" : " — at or above the minimum");
    const basis = m.basis === "assignments" ? "submitted, approved or in-review submissions" : "completed participants (no synced submissions)";
    money.innerHTML = "";
    const dl = document.createElement("dl");
    dl.className = "monitor-money";
    const add = (k, v, cls) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v; if (cls) dd.className = cls;
      dl.append(dt, dd);
    };
    add("reward", `${p.reward}${cur}`);
    add("median completion time", duration(p.median_s));
    add("effective pay per hour", p.per_hour === null ? "– (no completed participant yet)" : `${p.per_hour}${cur}${verdict}`,
      p.below_minimum ? "bad" : (p.below_minimum === false ? "good" : ""));
    add("platform minimum per hour", p.minimum === null ? "none set" : `${p.minimum}${cur}`);
    add(`rewards (${m.n_rewarded} ${basis})`, `${m.rewards}${cur}`);
    add("bonuses pending / paid", `${m.bonuses_pending} / ${m.bonuses_paid}${cur}`);
    if (m.bonuses_failed !== "0.00") add("bonuses failed (retry pays them)", `${m.bonuses_failed}${cur}`, "bad");
    add("committed in all", `${m.total}${cur}`);
    money.append(dl);
  }
  const at = new Date(d.updated_at);
  const updated = document.getElementById("monitor-updated");
  updated.dataset.at = d.updated_at;
  updated.textContent = `updated ${at.toLocaleTimeString()}`;
}

let timer = null;
let busy = false;

async function poll() {
  timer = null;
  if (document.hidden || busy) return;
  busy = true;
  const error = document.getElementById("monitor-error");
  try {
    const resp = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    draw(await resp.json());
    error.textContent = "";
  } catch (e) {
    error.textContent = ` (update failed: ${e.message}; retrying)`;
  } finally {
    busy = false;
  }
  if (!document.hidden && timer === null) timer = setTimeout(poll, pollMs);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  } else if (timer === null) {
    poll();
  }
});

draw(JSON.parse(document.getElementById("monitor-data").textContent));
timer = setTimeout(poll, pollMs);
