// Calibration (9 points x N clicks, a study setting: 8 outer, then the centre) and validation (a 5 s stare at
// the centre, then four shorter points). The page sends the raw predictions, with how many tracker
// frames each target saw; the server computes every target's accuracy, spread and data loss, decides
// pass/fail by its rule (collection/gaze_quality.py) and keeps every attempt. No dot is shown before
// the camera finds a face; without one the attempt ends at once (issue 20, item 8).
'use strict';

import './tab_lock.mjs'; // first: a second tab of this task stops here (no camera)
import { browserProblem, startGaze, storedCalibrationCount } from './gaze.mjs';
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
// A target's predictions count once the eyes have moved and the tracker has caught up: a saccade and
// a few of the tracker's frames (the camera's latency), which on a slow computer (3-5 frames/s) is most
// of a second. The target then stays until enough frames were seen (bounded). WebGazer's Kalman filter
// is off meanwhile: it lags a jump between targets and then overshoots it by about a sixth for 10-20
// frames, so the accuracy would depend on the order of the targets, not on the tracker.
const SETTLE_MS = testHooks.settleMs ?? 300;
const SETTLE_FRAMES = testHooks.settleFrames ?? 3;
const MIN_FRAMES = 5;
const EXTRA_MAX_MS = 3000;
// How long the page waits for the camera to find a face before the dots (a study may not start
// without one), and how long the face must be seen without a break.
const faceWaitMs = () => testHooks.faceWaitMs || 30000; // read at each wait (a test hook may shorten it)
const FACE_STEADY_MS = 1000;
const VALIDATION = [[50, 50], [25, 25], [75, 25], [25, 75], [75, 75]]; // the centre first

let gaze = null;
let clicks = [];
let headSamples = [];
let faceSamples = [];
let failedAttempts = 0;
let trackerFrames = 0;
// The tracker's frame count, read by browser tests to look at a dot for a few tracker frames (a
// loaded machine runs WebGazer at 2-5 frames/s) before clicking it.
window.ifllmCalibration = { get frames() { return trackerFrames; } };

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
  // frames: the tracker's frames after settling, with or without a prediction (data loss per target)
  const point = { x: r.left + r.width / 2, y: r.top + r.height / 2, centre, frames: 0, samples: [] };
  const start = performance.now();
  let seen = 0;
  const listener = (p, t) => {
    seen += 1;
    // Every target, the centre too: the eyes come from the message above the area.
    if (t - start < SETTLE_MS || seen <= SETTLE_FRAMES) return;
    point.frames += 1;
    if (p) point.samples.push({ x: p.x, y: p.y, t });
  };
  listeners.add(listener);
  await sleep(ms);
  while (point.frames < MIN_FRAMES && performance.now() - start < ms + EXTRA_MAX_MS) await sleep(100);
  listeners.delete(listener);
  target.remove();
  return point;
}

/** The validation targets where they would be shown, without predictions (an attempt without a face). */
function emptyPoints() {
  const r = area.getBoundingClientRect();
  return VALIDATION.map(([x, y], i) => ({ x: r.left + (r.width * x) / 100, y: r.top + (r.height * y) / 100,
    centre: i === 0, frames: 0, samples: [] }));
}

async function postAttempt(kind, points) {
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

/**
 * Wait until the camera has found a face for FACE_STEADY_MS without a break, showing the camera
 * tips meanwhile. Resolves true, or false when the wait (30 s) ended or the worker said the camera
 * cannot find them (the attempt then fails as "no face", without 9 dots and a validation first).
 */
function waitForFace() {
  const panel = $('#face-wait');
  message.textContent = config.text.waitFace;
  show(panel, true);
  return new Promise((resolve) => {
    const start = performance.now();
    let since = null;
    let timer = null;
    const done = (found) => {
      clearInterval(timer);
      $('#no-face-stop').removeEventListener('click', stop);
      show(panel, false);
      message.textContent = '';
      resolve(found);
    };
    const stop = () => done(false);
    $('#no-face-stop').addEventListener('click', stop);
    timer = setInterval(() => {
      const now = performance.now();
      if (gaze.faceFound()) {
        since = since ?? now;
        if (now - since >= FACE_STEADY_MS) done(true);
      } else {
        since = null;
        if (now - start >= faceWaitMs()) done(false);
      }
    }, 200);
  });
}

const listeners = new Set();

async function validate(kind) {
  area.querySelectorAll('.calib-point').forEach((e) => e.remove());
  gaze.setLearning(false); // the mouse is not where the eyes are now: do not train on it
  message.textContent = config.text.lookCentre;
  await sleep(1200);
  message.textContent = config.text.followDot;
  const points = [];
  gaze.setSmoothing(false);
  try {
    for (const [i, [x, y]] of VALIDATION.entries()) points.push(await collectAt(x, y, i ? POINT_MS : CENTRE_MS, i === 0));
  } finally {
    gaze.setSmoothing(true);
  }
  message.textContent = '';
  return postAttempt(kind, points);
}

function showResult(data) {
  // A plain verdict for the worker: the figures (per target) are for staff (admin, report).
  stage.classList.remove('active');
  show($('#intro'), false);
  show($('#result'), true);
  show($('#passed'), data.passed);
  show($('#failed'), !data.passed);
  if (!data.passed) {
    failedAttempts += 1;
    // Say why: a face never found is not the same advice as a face found but inaccurate.
    $('#failed-reason').textContent = data.reason === 'no_face' ? config.text.failedNoFace : config.text.failedAccuracy;
    const left = config.maxAttempts ? config.maxAttempts - config.failedBefore - failedAttempts : null;
    $('#attempts-left').textContent = left !== null && left > 0
      ? config.text.attemptsLeft.replace('%(n)s', left) : '';
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
  try {
    const found = await waitForFace();
    let data;
    if (!found) {
      faceSamples.push(0); // no dots without a face: this attempt fails as "no face"
      data = await postAttempt(kind, emptyPoints());
    } else {
      headSamples = []; // the shares describe the attempt from the moment the face was found
      faceSamples = [];
      if (kind === 'calibration') {
        gaze.setLearning(true);
        gaze.showDot(true);
        await calibrationPoints();
        gaze.showDot(false);
      }
      data = await validate(kind);
    }
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
  // The short check needs the calibration this browser kept; when it is gone (the worker's last
  // completion page forgets it, or the browser's data was cleared) the full calibration runs instead
  // of a check that could only score 0 and use up an attempt.
  if (config.mode === 'revalidation' && typeof window.IFLLM_TEST_GAZE !== 'function'
      && !(await storedCalibrationCount())) {
    config.mode = 'calibration';
    document.body.dataset.mode = 'calibration';
  }
  try {
    gaze = await startGaze({ webgazerSrc: config.webgazerSrc, faceMeshPath: config.faceMeshPath,
      forget: config.mode === 'calibration' && !config.keepWebgazerData });
  } catch (e) {
    showError(config.text.cameraFailed);
    $('#start').disabled = false;
    return;
  }
  gaze.onPrediction((p, t) => {
    trackerFrames += 1;
    for (const l of listeners) l(p, t);
  });
  setInterval(updateHead, 250);
  run(config.mode);
});
$('#retry').addEventListener('click', async () => {
  await gaze.clear(); // failing clears the model and starts again
  run('calibration');
});
$('#continue').addEventListener('click', () => { location.href = config.nextUrl; });
