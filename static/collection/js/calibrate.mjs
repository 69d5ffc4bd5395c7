// Calibration (9 points x N clicks, a study setting: 8 outer, then the centre) and validation (a 5 s stare at
// the centre, then four shorter points). The page sends the raw predictions; the server computes
// the score, decides pass/fail and keeps every attempt.
'use strict';

import './tab_lock.mjs'; // first: a second tab of this task stops here (no camera)
import { browserProblem, startGaze } from './gaze.mjs';
import { trackerReady } from './tracker_files.mjs';
import { environment } from './layout.mjs';

const config = JSON.parse(document.getElementById('calibrate-config').textContent);
const $ = (sel) => document.querySelector(sel);
const stage = $('#stage');
const area = $('#calib-area');
const message = $('#stage-message');
const headStatus = $('#head-status');
const CLICKS_PER_POINT = config.clicksPerPoint || 5;
const OUTER = [[10, 10], [50, 10], [90, 10], [90, 50], [90, 90], [50, 90], [10, 90], [10, 50]];
const testHooks = window.IFLLM_TEST_GAZE || {};
const CENTRE_MS = testHooks.centreMs || 5000;
const POINT_MS = testHooks.pointMs || 1500;
const SETTLE_MS = 300;

let gaze = null;
let clicks = [];
let headSamples = [];
let faceSamples = [];
let failedAttempts = 0;

const problem = browserProblem();
if (problem && typeof window.IFLLM_TEST_GAZE !== 'function') {
  location.href = `${config.unsupportedUrl}?reason=${encodeURIComponent(problem)}`;
}

function show(el, on) { el.hidden = !on; }
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function updateHead() {
  // Three states from WebGazer's face tracker, not from its predictions: before any calibration
  // click WebGazer predicts nothing although the face is found.
  const p = gaze && gaze.latest();
  const face = gaze ? gaze.faceFound() : false;
  const inBox = p ? p.headInBox : (gaze && gaze.headInBox ? gaze.headInBox() : null);
  headSamples.push(face && inBox === true ? 1 : 0);
  faceSamples.push(face ? 1 : 0);
  let state = 'ok';
  if (!face) state = 'no-face';
  else if (inBox === false) state = 'head-out';
  else if (!p) state = 'not-calibrated';
  headStatus.hidden = false;
  headStatus.dataset.state = state;
  headStatus.className = `head-status ${state === 'ok' || state === 'not-calibrated' ? 'good' : 'bad'}`;
  headStatus.textContent = { 'no-face': config.text.noFace, 'head-out': config.text.headOut,
    'not-calibrated': config.text.notCalibrated, ok: config.text.headOk }[state];
}

function share(list) { return list.length ? list.reduce((a, b) => a + b, 0) / list.length : null; }

function place(el, xPct, yPct) {
  el.style.left = `${xPct}%`;
  el.style.top = `${yPct}%`;
}

function calibrationPoints() {
  return new Promise((resolve) => {
    area.querySelectorAll('.calib-point, .calib-target').forEach((e) => e.remove());
    message.textContent = config.text.clickDots;
    let remaining = OUTER.length;
    const addPoint = (index, [x, y]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'calib-point';
      b.dataset.clicks = '0';
      b.dataset.index = String(index);
      b.setAttribute('aria-label', config.text.pointLabel.replace('%(n)s', index + 1));
      place(b, x, y);
      b.addEventListener('click', (e) => {
        const n = Number(b.dataset.clicks) + 1;
        b.dataset.clicks = String(n);
        clicks.push({ point: index, x: e.clientX, y: e.clientY, t: performance.now() });
        if (n < CLICKS_PER_POINT) return;
        b.disabled = true;
        b.classList.add('done');
        remaining -= 1;
        if (index === OUTER.length) resolve();
        else if (remaining === 0) addPoint(OUTER.length, [50, 50]); // the centre comes last
      });
      area.appendChild(b);
    };
    OUTER.forEach((p, i) => addPoint(i, p));
  });
}

async function collectAt(xPct, yPct, ms, centre) {
  const target = document.createElement('div');
  target.className = 'calib-target';
  target.dataset.active = '1';
  place(target, xPct, yPct);
  area.appendChild(target);
  const r = target.getBoundingClientRect();
  const point = { x: r.left + r.width / 2, y: r.top + r.height / 2, centre, samples: [] };
  const start = performance.now();
  const listener = (p, t) => {
    if (p && t - start >= (centre ? 0 : SETTLE_MS)) point.samples.push({ x: p.x, y: p.y, t });
  };
  listeners.add(listener);
  await sleep(ms);
  listeners.delete(listener);
  target.remove();
  return point;
}

const listeners = new Set();

async function validate(kind) {
  area.querySelectorAll('.calib-point').forEach((e) => e.remove());
  gaze.setLearning(false); // the mouse is not where the eyes are now: do not train on it
  message.textContent = config.text.lookCentre;
  await sleep(1200);
  message.textContent = '';
  const points = [await collectAt(50, 50, CENTRE_MS, true)];
  for (const [x, y] of [[25, 25], [75, 25], [25, 75], [75, 75]]) points.push(await collectAt(x, y, POINT_MS, false));
  const response = await fetch(config.attemptUrl, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': config.csrfToken },
    body: JSON.stringify({ kind, viewport_w: window.innerWidth, viewport_h: window.innerHeight, clicks, points,
      head_in_box_share: share(headSamples), face_found_share: share(faceSamples), environment: environment() }),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || JSON.stringify(data));
  return data;
}

function showResult(data) {
  stage.classList.remove('active');
  show($('#intro'), false);
  show($('#result'), true);
  $('#score').textContent = data.score.toFixed(0);
  $('#threshold').textContent = data.threshold.toFixed(0);
  show($('#passed'), data.passed);
  show($('#failed'), !data.passed);
  if (!data.passed) {
    failedAttempts += 1;
    // Say why: a face never found is not the same advice as a face found but inaccurate.
    const noFace = share(faceSamples) !== null && share(faceSamples) < 0.5;
    $('#failed-reason').textContent = noFace ? config.text.failedNoFace : config.text.failedAccuracy;
    const left = config.maxAttempts ? config.maxAttempts - config.failedBefore - failedAttempts : null;
    $('#attempts-left').textContent = left !== null && left > 0
      ? config.text.attemptsLeft.replace('%(n)s', left) : '';
  }
  const rows = $('#points');
  rows.replaceChildren();
  for (const p of data.points) {
    const tr = document.createElement('tr');
    const pct = p.share_within_radius === null ? '–' : `${Math.round(p.share_within_radius * 100)} %`;
    const cells = [p.centre ? config.text.centre : `${Math.round(p.target_x)}, ${Math.round(p.target_y)}`, pct,
      p.mean_distance === null ? '–' : Math.round(p.mean_distance), p.precision_rms === null ? '–' : Math.round(p.precision_rms),
      p.samples_per_second === null ? '–' : p.samples_per_second.toFixed(1)];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.append(td); }
    rows.append(tr);
  }
  (data.passed ? $('#continue') : $('#retry')).focus();
}

async function run(kind) {
  show($('#intro'), false);
  show($('#result'), false);
  stage.classList.add('active');
  clicks = [];
  headSamples = [];
  faceSamples = [];
  if (kind === 'calibration') {
    gaze.setLearning(true);
    gaze.showDot(true);
    await calibrationPoints();
    gaze.showDot(false);
  }
  try {
    const data = await validate(kind);
    document.body.dataset.calibration = data.passed ? 'passed' : 'failed';
    if (data.way_out_url) { // the last attempt the study allows: the page that says what now
      gaze.end();
      location.href = data.way_out_url;
      return;
    }
    showResult(data);
  } catch (e) {
    stage.classList.remove('active');
    show($('#intro'), true);
    showError(String(e.message || e));
  }
}

function showError(text) {
  const box = $('#error');
  box.textContent = text;
  box.hidden = !text; // an empty error box is not shown
}

$('#start').addEventListener('click', async () => {
  $('#start').disabled = true;
  showError('');
  await trackerReady(); // the tracker files, with progress shown (tracker_files.mjs)
  try {
    gaze = await startGaze({ webgazerSrc: config.webgazerSrc, faceMeshPath: config.faceMeshPath,
      forget: config.mode === 'calibration' && !config.keepWebgazerData });
  } catch (e) {
    showError(config.text.cameraFailed);
    $('#start').disabled = false;
    return;
  }
  gaze.onPrediction((p, t) => { for (const l of listeners) l(p, t); });
  setInterval(updateHead, 250);
  run(config.mode);
});
$('#retry').addEventListener('click', async () => {
  await gaze.clear(); // failing clears the model and starts again
  run('calibration');
});
$('#continue').addEventListener('click', () => { location.href = config.nextUrl; });
