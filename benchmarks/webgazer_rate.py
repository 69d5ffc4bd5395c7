"""WebGazer's cost, rate and accuracy per setting, with the real WebGazer in Chromium (issue 20, item 5).

Each setting runs in a fresh page of Debian's Chromium (headless, Playwright): WebGazer 3.5.3 from
``node_modules`` with its MediaPipe face mesh, on a page-side camera that shows the face of the
browser tests (``tests/browser/face_video.py``: the astronaut photograph) with light eye openings
and dark irises painted a few pixels toward the current target (mirrored), so that the tracker
has something to follow (a still face cannot measure accuracy: WebGazer then predicts the mean
of the clicks). The camera is a canvas ``captureStream`` at the setting's resolution, handed to
WebGazer through ``getUserMedia``.

Per setting: calibration (9 targets, each looked at for 1 s and 2 tracker frames, then 5 clicks,
one per tracker frame, given to WebGazer with ``recordScreenPosition`` as its click listener
would), then validation (5 other targets, each looked at for 1 s and 2 frames, then predictions
collected for 2 s). Printed per setting:

* ``ms/frame``: median time between WebGazer's prediction callbacks (its whole loop: face mesh,
  eye patches, regression, and what else the page does);
* ``pred Hz``: predictions per second during validation;
* ``old clock Hz``: ticks per second that the old logger's 100 ms timer achieved in the same page
  (what the chat logged before: one gaze and one mouse sample per tick);
* ``gaze Hz``/``mouse Hz``: samples per second of the chat's logger (``logger/sampler.mjs``: gaze
  from WebGazer's callback, at most one per 100 ms; mouse at every 100 ms slot from the pointer
  events' timestamps);
* ``error px``: mean distance of the predictions to the validation target (mean over targets),
  and ``corner px``: the same over the 4 outer targets only.

Not a test: run it by hand (about a minute per setting on a loaded 2-core machine)::

    .venv/bin/python benchmarks/webgazer_rate.py
    .venv/bin/python benchmarks/webgazer_rate.py --settings default,cam320 --repeat 2

The figures depend on the machine and its load: say which machine and what load (``uptime``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: name -> (camera width, height, regression, Kalman filter on, eyes follow the target)
SETTINGS: dict[str, tuple[int, int, str, bool, bool]] = {
    "default": (640, 480, "ridge", True, True),  # what the site uses (WebGazer's default camera)
    "cam320": (320, 240, "ridge", True, True),
    "cam1280": (1280, 720, "ridge", True, True),
    "weighted": (640, 480, "weightedRidge", True, True),
    "nokalman": (640, 480, "ridge", False, True),
    "still": (640, 480, "ridge", True, False),  # control: a face whose eyes never move
}

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>bench</title>
<style>body{margin:0;font:16px sans-serif} #t{position:fixed;width:20px;height:20px;margin:-10px 0 0 -10px;
border-radius:50%;background:#c00}</style></head><body><div id="t"></div>
<script src="/webgazer/webgazer.js"></script>
<script type="module">
import { Sampler } from '/static/collection/js/logger/sampler.mjs';
window.STAGE = 'start';
const cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const img = new Image(); img.src = '/face.png'; await img.decode();
const canvas = document.createElement('canvas'); canvas.width = cfg.w; canvas.height = cfg.h;
const ctx = canvas.getContext('2d');
let target = { x: innerWidth / 2, y: innerHeight / 2 };
let eyes = null; // eye boxes in camera pixels, taken from WebGazer's first eye patches
function draw() {
  ctx.drawImage(img, 0, 0, cfg.w, cfg.h);
  if (!eyes || !cfg.follow) return;
  const fx = target.x / innerWidth - 0.5, fy = target.y / innerHeight - 0.5;
  for (const e of eyes) {
    const cx = e.x + e.w / 2, cy = e.y + e.h / 2;
    ctx.fillStyle = '#e8e4de';
    ctx.beginPath(); ctx.ellipse(cx, cy, e.w * 0.48, e.h * 0.42, 0, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#1d1410';
    ctx.beginPath();
    ctx.arc(cx - fx * e.w * 0.55, cy + fy * e.h * 0.5, e.h * 0.32, 0, 2 * Math.PI); ctx.fill();
  }
}
draw();
setInterval(draw, 33);
const stream = canvas.captureStream(30);
navigator.mediaDevices.getUserMedia = async () => stream;

const wg = window.webgazer;
wg.params.faceMeshSolutionPath = '/webgazer/mediapipe/face_mesh';
wg.params.applyKalmanFilter = cfg.kalman;
wg.saveDataAcrossSessions(false);
const tracker = wg.getTracker();
const getEyePatches = tracker.getEyePatches.bind(tracker);
tracker.getEyePatches = async (...args) => {
  const p = await getEyePatches(...args);
  if (p && !eyes) {
    eyes = [p.left, p.right].map((e) => ({ x: e.imagex, y: e.imagey, w: e.width, h: e.height }));
  }
  return p;
};
const listeners = [];
let calls = [];
wg.setRegression(cfg.regression).setGazeListener((data, elapsed) => {
  const now = performance.now();
  calls.push({ t: now, p: data ? { x: data.x, y: data.y } : null });
  for (const l of listeners) l(data ? { x: data.x, y: data.y } : null, now);
});
window.STAGE = 'begin';
await wg.begin();
// A canvas stream is not a camera for the autoplay policy: a muted video may play.
const video = document.getElementById('webgazerVideoFeed');
video.muted = true;
await video.play();
window.STAGE = 'face';
wg.showVideoPreview(false); wg.showPredictionPoints(false); // as the chat page does
await wg.clearData();
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
let frameWaiters = [];
listeners.push(() => { const w = frameWaiters; frameWaiters = []; for (const r of w) r(); });
async function frames(n) { for (let i = 0; i < n; i += 1) await new Promise((r) => frameWaiters.push(r)); }
const dot = document.getElementById('t');
function look(x, y) { target = { x, y }; dot.style.left = x + 'px'; dot.style.top = y + 'px'; }
while (!eyes) await wait(100);
window.STAGE = 'calibration';
const W = innerWidth, H = innerHeight;
for (const fy of [0.1, 0.5, 0.9]) for (const fx of [0.1, 0.5, 0.9]) {
  look(W * fx, H * fy);
  await wait(1000);
  await frames(2); // the eyes have moved in the frames the tracker reads
  // 5 clicks, each on a new tracker frame (a click uses the latest frame's eye patches).
  for (let k = 0; k < 5; k += 1) { wg.recordScreenPosition(W * fx, H * fy, 'click'); await frames(1); }
}
// Validation, with the chat's logger and the old logger's fixed clock running beside it.
const gazeSource = { onPrediction: (fn) => listeners.push(fn), faceFound: () => true, headInBox: () => true };
const sampler = new Sampler({ intervalMs: 100, gaze: gazeSource, boxes: () => [], turnId: () => null,
  onRow: () => {} });
// The old logger's clock (its Sampler.start before issue 20): a fixed 100 ms schedule that skips
// missed ticks; each tick logged one gaze and one mouse sample.
let ticks = 0; let k = 0; let oldTimer = null; const clockStart = performance.now();
const step = () => {
  k += 1;
  let next = clockStart + k * 100;
  const now = performance.now();
  if (next < now) { k = Math.ceil((now - clockStart) / 100); next = clockStart + k * 100; }
  oldTimer = setTimeout(step, next - now);
  ticks += 1;
};
oldTimer = setTimeout(step, 100);
sampler.start();
window.STAGE = 'validation';
calls = [];
const t0 = performance.now();
const targets = [];
for (const [fx, fy] of [[0.5, 0.5], [0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]]) {
  const x = W * fx, y = H * fy;
  look(x, y);
  await wait(1000);
  await frames(2);
  const from = performance.now();
  await wait(2000);
  const preds = calls.filter((c) => c.t >= from && c.p).map((c) => Math.hypot(c.p.x - x, c.p.y - y));
  const error = preds.length ? preds.reduce((a, b) => a + b, 0) / preds.length : null;
  targets.push({ fx, fy, n: preds.length, error });
}
const seconds = (performance.now() - t0) / 1000;
clearTimeout(oldTimer); sampler.stop();
const times = calls.map((c) => c.t);
const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
const rates = sampler.rates();
window.RESULT = {
  camera: [wg.getVideoElementCanvas().width, wg.getVideoElementCanvas().height],
  msPerFrame: gaps.length ? gaps[Math.floor(gaps.length / 2)] : null,
  predHz: calls.filter((c) => c.p).length / seconds,
  oldClockHz: ticks / ((performance.now() - clockStart) / 1000),
  gazeHz: rates.gaze_hz, mouseHz: rates.mouse_hz, targets,
};
</script></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args: object) -> None:  # quiet
        pass


def _site(folder: Path) -> None:
    """The page, the face photograph, WebGazer's files and the site's static files."""
    from PIL import Image

    from tests.browser.face_video import face_frame

    (folder / "index.html").write_text(PAGE)
    Image.fromarray(face_frame()).save(folder / "face.png")
    (folder / "webgazer").symlink_to(ROOT / "node_modules" / "webgazer" / "dist")
    (folder / "static").symlink_to(ROOT / "static")


def _run(browser, base: str, name: str, timeout_s: float) -> dict:
    w, h, regression, kalman, follow = SETTINGS[name]
    cfg = {"w": w, "h": h, "regression": regression, "kalman": kalman, "follow": follow}
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    try:
        page.goto(f"{base}/index.html#{json.dumps(cfg)}")
        page.wait_for_function("() => window.RESULT", timeout=timeout_s * 1000, polling=1000)
        result = page.evaluate("window.RESULT")
    except Exception as exc:  # report the page's own error and stage, not only the timeout
        stage = page.evaluate("window.STAGE")
        raise RuntimeError(f"{name}: stage {stage}: {errors or exc} {console[-5:]}") from exc
    finally:
        page.close()
    return result


def _row(name: str, runs: list[dict]) -> str:
    def med(values: list[float | None]) -> float:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    def err(r: dict, corners: bool) -> float | None:
        ts = [t["error"] for t in r["targets"] if t["error"] is not None and (not corners or t["fx"] != 0.5)]
        return sum(ts) / len(ts) if ts else None

    w, h, regression, kalman, follow = SETTINGS[name]
    label = f"{w}x{h} {regression}{'' if kalman else ' no-Kalman'}{'' if follow else ' still-eyes'}"
    return (
        f"| {name} | {label} | {med([r['msPerFrame'] for r in runs]):.0f} | {med([r['predHz'] for r in runs]):.1f} "
        f"| {med([r['oldClockHz'] for r in runs]):.1f} | {med([r['gazeHz'] for r in runs]):.1f} "
        f"| {med([r['mouseHz'] for r in runs]):.1f} | {med([err(r, False) for r in runs]):.0f} "
        f"| {med([err(r, True) for r in runs]):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of: " + ", ".join(SETTINGS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting (the median is printed)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args()
    names = [n for n in args.settings.split(",") if n]
    unknown = set(names) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings: {sorted(unknown)}")

    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _site(folder)
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://localhost:{server.server_address[1]}"
        load = os.getloadavg()
        print(f"# machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start")
        results: dict[str, list[dict]] = {n: [] for n in names}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for _ in range(args.repeat):
                for name in names:
                    t = time.monotonic()
                    r = _run(browser, base, name, args.timeout)
                    results[name].append(r)
                    per_target = [(t["n"], None if t["error"] is None else round(t["error"])) for t in r["targets"]]
                    print(f"# {name}: camera {r['camera']}, {time.monotonic() - t:.0f} s, "
                          f"(predictions, error px) per target {per_target}", flush=True)
            browser.close()
        server.shutdown()
        load = os.getloadavg()
        print(f"# load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end; median of {args.repeat} run(s)")
        print("| setting | camera, regression | ms/frame | pred Hz | old clock Hz | gaze Hz | mouse Hz | error px "
              "| corner px |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in names:
            print(_row(name, results[name]))


if __name__ == "__main__":
    main()
