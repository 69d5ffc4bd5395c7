"""A page-side camera whose eyes look where the page asks the worker to look (issue 20).

Chromium's fake camera plays a still video: its eyes never move, so the real WebGazer cannot learn
anything from it and a validation on it tells a working check from a broken one only if the check
fails it. This camera answers ``getUserMedia`` with a canvas ``captureStream()`` that draws the same
public-domain astronaut photograph (scikit-image's ``data.astronaut()``, Eileen Collins, NASA)
enlarged, with light eye openings and dark irises painted a few photo pixels toward the point the
page wants looked at (mirrored, as a camera facing the worker sees it):

* the validation target (``.calib-target``) while one is on screen;
* otherwise the mouse pointer: a worker looks at the calibration dot they are about to click
  (tests move the mouse onto a dot, wait about a second, then click).

``follow=False`` paints the same eyes looking straight ahead at all times: the still face on the
same camera. The real WebGazer (its MediaPipe face mesh and ridge regression) runs unchanged.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np

#: The photograph's square that is drawn (rows, columns of ``data.astronaut()``), and where its
#: eyes are in the photograph (centre x, y of each eye opening; measured on the photo).
CROP = (0, 300, 60, 360)
EYES = [(204.0, 101.5), (246.0, 102.5)]
#: Canvas size and rate: what a laptop webcam gives WebGazer (640x480) at a modest rate.
WIDTH, HEIGHT, FPS = 640, 480, 15
#: How far the iris moves (photo pixels) for a target at the screen's edge, horizontally and vertically.
SHIFT_X, SHIFT_Y = 5.0, 2.6


def photo_data_url() -> str:
    """The cropped photograph as a PNG data URL (made at test time; nothing is stored in the repo)."""
    from PIL import Image
    from skimage import data

    top, bottom, left, right = CROP
    photo = np.ascontiguousarray(data.astronaut()[top:bottom, left:right])
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


_SCRIPT = """
(() => {
  const cfg = %(cfg)s;
  const canvas = document.createElement('canvas');
  canvas.width = cfg.width; canvas.height = cfg.height;
  const ctx = canvas.getContext('2d');
  const photo = new Image();
  photo.src = cfg.photo;
  const side = cfg.crop[3] - cfg.crop[2];
  const scale = cfg.height / side;                 // the square photo fills the frame's height
  const offX = (cfg.width - side * scale) / 2;
  let mouse = null;
  document.addEventListener('mousemove', (e) => { mouse = [e.clientX, e.clientY]; }, true);
  window.__eyeCamera = { follow: cfg.follow, frames: 0, looking: null };

  function lookingAt() {
    const t = document.querySelector('.calib-target');
    if (t) { const r = t.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }
    return mouse;
  }

  function draw() {
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, cfg.width, cfg.height);
    if (!photo.complete) return;
    ctx.setTransform(scale, 0, 0, scale, offX - cfg.crop[2] * scale, -cfg.crop[0] * scale);
    ctx.drawImage(photo, cfg.crop[2], cfg.crop[0]);
    let dx = 0, dy = 0;
    const at = window.__eyeCamera.follow ? lookingAt() : null;
    window.__eyeCamera.looking = at;
    if (at) {
      const nx = Math.max(-1, Math.min(1, (at[0] / innerWidth) * 2 - 1));
      const ny = Math.max(-1, Math.min(1, (at[1] / innerHeight) * 2 - 1));
      dx = -nx * cfg.shift[0];                     // mirrored: looking right turns the iris to the image's left
      dy = ny * cfg.shift[1];
    }
    for (const [ex, ey] of cfg.eyes) {
      ctx.save();
      ctx.beginPath();
      ctx.ellipse(ex, ey, 9, 4, 0, 0, 2 * Math.PI);
      ctx.fillStyle = '#efe9e2';
      ctx.fill();
      ctx.clip();
      ctx.beginPath();
      ctx.arc(ex + dx, ey + dy, 3.8, 0, 2 * Math.PI);
      ctx.fillStyle = '#3a2414';
      ctx.fill();
      ctx.beginPath();
      ctx.arc(ex + dx, ey + dy, 1.6, 0, 2 * Math.PI);
      ctx.fillStyle = '#050302';
      ctx.fill();
      ctx.restore();
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    window.__eyeCamera.frames += 1;
    if (track && track.requestFrame) track.requestFrame(); // each drawing is one camera frame
  }

  let timer = null;
  let track = null;
  const original = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
    ? navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices) : null;
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    if (!constraints || !constraints.video) return original(constraints);
    // Frames on request (one per drawing), not by the canvas's own clock: on a loaded machine the
    // page's timers run late, and a frame must never show the eyes of an earlier target.
    const stream = canvas.captureStream(0);
    track = stream.getVideoTracks()[0];
    if (!timer) { draw(); timer = setInterval(draw, 1000 / cfg.fps); }
    return stream;
  };
})();
"""


def camera_script(*, follow: bool = True) -> str:
    """The init script (``context.add_init_script``) that installs the camera in every page."""
    cfg = {
        "photo": photo_data_url(), "crop": list(CROP), "eyes": [list(e) for e in EYES], "width": WIDTH,
        "height": HEIGHT, "fps": FPS, "shift": [SHIFT_X, SHIFT_Y], "follow": follow,
    }
    return _SCRIPT % {"cfg": json.dumps(cfg)}
