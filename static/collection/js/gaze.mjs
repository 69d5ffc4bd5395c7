// The gaze source: WebGazer with its MediaPipe files served by this site, or, in browser tests,
// `window.IFLLM_TEST_GAZE` (a function (timeMs) -> {x, y, headInBox} | null) instead of the
// webcam model. Everything else in the page only sees `latest()`.
'use strict';

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

class TestGaze {
  constructor(fn) { this.fn = fn; this.listeners = []; this.timer = null; }
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
  }
  headInBox() {
    const box = document.getElementById(this.wg.params.faceFeedbackBoxId);
    if (!box) return null;
    return box.style.border.includes('green');
  }
  async begin() {
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
  end() { this.wg.end(); }
}

export async function startGaze({ webgazerSrc, faceMeshPath }) {
  if (typeof window.IFLLM_TEST_GAZE === 'function') {
    const src = new TestGaze(window.IFLLM_TEST_GAZE);
    await src.begin();
    return src;
  }
  const wg = await loadWebGazer(webgazerSrc);
  const src = new WebGazerSource(wg, faceMeshPath);
  await src.begin();
  return src;
}
