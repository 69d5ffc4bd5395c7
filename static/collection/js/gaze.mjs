// The gaze source: WebGazer with its MediaPipe files served by this site, or, in browser tests,
// `window.IFLLM_TEST_GAZE` (a function (timeMs) -> {x, y, headInBox} | null) instead of the
// webcam model. Everything else in the page only sees `latest()`. (An object instead of a function,
// e.g. `{centreMs, pointMs}`, only shortens the calibration page's validation: the real WebGazer runs.)
'use strict';

import { eyesInBox } from './headbox.mjs';

let webgazerLoading = null;

function loadWebGazer(src) {
  if (window.webgazer) return Promise.resolve(window.webgazer);
  if (!webgazerLoading) {
    webgazerLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = () => resolve(window.webgazer);
      s.onerror = () => reject(new Error('could not load WebGazer'));
      document.head.appendChild(s);
    });
  }
  return webgazerLoading;
}

export function browserProblem() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return 'no camera access (getUserMedia)';
  if (!document.caretPositionFromPoint && !document.caretRangeFromPoint) return 'no caret position API';
  if (!navigator.sendBeacon || !window.localStorage || !window.fetch) return 'missing sendBeacon/localStorage/fetch';
  return null;
}

/**
 * Forget WebGazer's stored calibration (localforage's IndexedDB database, where WebGazer keeps
 * its click data with saveDataAcrossSessions). Called before a full calibration and when a
 * worker leaves, so that the next person on a shared computer starts from nothing.
 */
export function forgetStoredCalibration() {
  return new Promise((resolve) => {
    if (!window.indexedDB) { resolve(false); return; }
    const req = indexedDB.deleteDatabase('localforage');
    req.onsuccess = () => resolve(true);
    req.onerror = () => resolve(false);
    req.onblocked = () => resolve(false);
  });
}

/**
 * How many calibration examples WebGazer keeps in this browser (0 or null: none). Read without
 * creating the database when there is none (``indexedDB.open`` would create an empty one).
 */
export async function storedCalibrationCount() {
  if (!window.indexedDB || !indexedDB.databases) return null;
  if (!(await indexedDB.databases()).some((d) => d.name === 'localforage')) return null;
  return new Promise((resolve) => {
    const req = indexedDB.open('localforage');
    req.onerror = () => resolve(null);
    req.onsuccess = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('keyvaluepairs')) { db.close(); resolve(null); return; }
      const get = db.transaction('keyvaluepairs').objectStore('keyvaluepairs').get('webgazerGlobalData');
      get.onsuccess = () => { db.close(); resolve(Array.isArray(get.result) ? get.result.length : null); };
      get.onerror = () => { db.close(); resolve(null); };
    };
  });
}

class TestGaze {
  constructor(fn) { this.fn = fn; this.listeners = []; this.timer = null; }
  faceFound() { return this.latest() !== null; }
  headInBox() { const p = this.latest(); return p ? Boolean(p.headInBox ?? true) : false; }
  async begin() {
    // Predictions at ~30 Hz like a webcam tracker, fed to listeners (calibration scoring).
    this.timer = setInterval(() => {
      const p = this.fn(performance.now());
      for (const l of this.listeners) l(p, performance.now());
    }, 33);
  }
  latest() { return this.fn(performance.now()); }
  onPrediction(fn) { this.listeners.push(fn); }
  async clear() {}
  setLearning() {}
  showPreview() {}
  showDot() {}
  setSmoothing() {}
  end() { clearInterval(this.timer); }
}

class WebGazerSource {
  constructor(wg, faceMeshPath) {
    this.wg = wg;
    this.last = null;
    this.lastAt = 0;
    this.listeners = [];
    wg.params.faceMeshSolutionPath = faceMeshPath;
    wg.params.showVideoPreview = true;
    wg.params.showFaceFeedbackBox = true;
    // A small preview (the default 320x240 covers calibration targets and headings); the page's
    // CSS keeps every target out of the band it sits in.
    wg.params.videoViewerWidth = 160;
    wg.params.videoViewerHeight = 120;
    this.faceAt = -Infinity;
    this.eyesInBox = false; // from the last frame's eye patches (headbox.mjs), not the preview
    // The tracker's face state: its eye patches are false/null when the face mesh found no face.
    // (A missing *prediction* also means "not calibrated yet": WebGazer predicts nothing before
    // it has calibration clicks, so predictions alone cannot tell "no face".)
    const tracker = wg.getTracker();
    const getEyePatches = tracker.getEyePatches.bind(tracker);
    tracker.getEyePatches = async (...args) => {
      const patches = await getEyePatches(...args);
      if (patches) this.faceAt = performance.now();
      // args: (video, canvas, width, height); the patches are in that canvas's pixels.
      this.eyesInBox = eyesInBox(patches, args[2], args[3], wg.params.faceFeedbackBoxRatio);
      return patches;
    };
  }
  faceFound() { return performance.now() - this.faceAt < 500; }
  /** Both eyes inside WebGazer's feedback box in the last frame; false without a face. */
  headInBox() { return this.faceFound() && this.eyesInBox; }
  async begin() {
    // Kept between the calibration and chat pages of a session (the chat page loads the model);
    // cleared before each full calibration and when the worker leaves (forgetStoredCalibration).
    this.wg.saveDataAcrossSessions(true);
    this.wg.setRegression('ridge').setGazeListener((data) => {
      const now = performance.now();
      if (data) {
        this.last = { x: data.x, y: data.y, headInBox: this.headInBox() };
        this.lastAt = now;
      }
      for (const l of this.listeners) l(data ? this.last : null, now);
    });
    await this.wg.begin();
  }
  latest() {
    // No prediction for 500 ms means the tracker lost the face.
    if (!this.last || performance.now() - this.lastAt > 500) return null;
    return this.last;
  }
  onPrediction(fn) { this.listeners.push(fn); }
  async clear() { await this.wg.clearData(); }
  setLearning(on) {
    if (on) this.wg.addMouseEventListeners(); else this.wg.removeMouseEventListeners();
  }
  showPreview(on) { this.wg.showVideoPreview(on); }
  showDot(on) { this.wg.showPredictionPoints(on); }
  // WebGazer's Kalman filter (on by default): off during the eye-tracker check, whose targets jump
  // hundreds of pixels; the filter overshoots such a jump by about a sixth of it for 10-20 frames.
  setSmoothing(on) { this.wg.applyKalmanFilter(on); }
  end() { this.wg.end(); }
}

export async function startGaze({ webgazerSrc, faceMeshPath, forget = false }) {
  if (typeof window.IFLLM_TEST_GAZE === 'function') {
    const src = new TestGaze(window.IFLLM_TEST_GAZE);
    await src.begin();
    return src;
  }
  if (forget && !window.webgazer) await forgetStoredCalibration(); // before WebGazer opens it
  const wg = await loadWebGazer(webgazerSrc);
  const src = new WebGazerSource(wg, faceMeshPath);
  await src.begin();
  return src;
}
