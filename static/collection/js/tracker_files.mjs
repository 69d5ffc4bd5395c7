// WebGazer and its MediaPipe face-mesh files (about 12.4 MB) fetched into the browser's HTTP
// cache ahead of time, with visible progress. The instructions page loads them in the background
// while the worker reads; the calibration page shows how far the download is and makes Start wait
// for it (`trackerReady()`), so that Start never sits silent for half a minute on a slow line.
// WebGazer's own loads (its <script>, MediaPipe's fetches) then come from the cache: same URLs.
'use strict';

function fromScript(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

const tracker = fromScript('tracker-files') || (fromScript('calibrate-config') || {}).tracker || null;
let loading = null;

function mb(bytes) { return (bytes / 1e6).toFixed(1); }

function progressElement() {
  let box = document.getElementById('tracker-loading');
  if (!box) {
    const start = document.getElementById('start');
    if (!start) return null;
    box = document.createElement('div');
    box.id = 'tracker-loading';
    start.closest('.actions').before(box);
  }
  box.classList.add('tracker-loading');
  box.setAttribute('role', 'status');
  box.replaceChildren();
  const bar = document.createElement('progress');
  bar.max = 100;
  bar.value = 0;
  const label = document.createElement('span');
  box.append(bar, label);
  box.hidden = false;
  return { box, bar, label };
}

function render(ui, done, total, finished) {
  if (!ui) return;
  const pct = total ? Math.min(100, Math.floor((100 * done) / total)) : 100;
  ui.bar.value = pct;
  ui.box.dataset.percent = String(pct);
  ui.box.dataset.state = finished ? 'done' : 'loading';
  ui.label.textContent = finished ? tracker.text.ready
    : tracker.text.loading.replace('%%', '%').replace('%(pct)s', pct).replace('%(done)s', mb(done)).replace('%(total)s', mb(total));
}

async function fetchInto(file, onBytes) {
  // A plain GET with the default cache mode: the response lands in the HTTP cache.
  const response = await fetch(file.url, { credentials: 'same-origin' });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status} for ${file.url}`);
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onBytes(value.byteLength);
  }
}

/** Start (once) fetching every tracker file; resolves when all are in (or one failed: WebGazer's
 * own loader then tries again and reports the error). */
export function trackerFilesLoad() {
  if (loading) return loading;
  if (!tracker || !window.fetch) { loading = Promise.resolve(); return loading; }
  const total = tracker.files.reduce((s, f) => s + f.bytes, 0);
  const ui = progressElement();
  let done = 0;
  let shown = 0;
  render(ui, 0, total, false);
  const tick = (n) => {
    done += n;
    const now = performance.now();
    if (now - shown > 100) { shown = now; render(ui, done, total, false); } // at most 10 repaints a second
  };
  loading = Promise.all(tracker.files.map((f) => fetchInto(f, tick)))
    .then(() => { render(ui, total, total, true); document.body.dataset.tracker = 'loaded'; })
    .catch((e) => { if (ui) ui.box.hidden = true; document.body.dataset.tracker = 'failed'; console.warn(e); });
  return loading;
}

/** What Start awaits on the calibration page: the files, then a note that WebGazer is starting
 * (compiling its WebAssembly and opening the camera takes seconds more on a slow computer). */
export async function trackerReady() {
  await trackerFilesLoad();
  const box = document.getElementById('tracker-loading');
  if (box && tracker && !box.hidden) {
    box.dataset.state = 'starting';
    box.querySelector('span').textContent = tracker.text.starting;
  }
}

if (tracker) trackerFilesLoad();
