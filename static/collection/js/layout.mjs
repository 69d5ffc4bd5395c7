// What the staff pages need to redraw and to measure what the worker saw, read from the page:
// the screen and camera (sent with each calibration attempt: the eye-tracking report turns pixels
// into degrees with it) and the answer boxes' computed style (sent with each rating: the replay
// draws the box at this size and font, so that box coordinates land on the same words).
'use strict';

const px = (v) => { const n = parseFloat(v); return Number.isFinite(n) ? n : 0; };

/** Screen size (CSS px), device pixel ratio and WebGazer's camera stream as delivered. */
export function environment() {
  const out = {
    screen_w: Math.round(window.screen.width), screen_h: Math.round(window.screen.height),
    device_pixel_ratio: window.devicePixelRatio || 1,
  };
  const video = document.getElementById('webgazerVideoFeed');
  const track = video && video.srcObject && video.srcObject.getVideoTracks ? video.srcObject.getVideoTracks()[0] : null;
  const settings = track && track.getSettings ? track.getSettings() : {};
  const w = settings.width || (video && video.videoWidth);
  const h = settings.height || (video && video.videoHeight);
  if (w && h) { out.camera_w = w; out.camera_h = h; }
  if (settings.frameRate) out.camera_fps = settings.frameRate;
  return out;
}

/** One answer box's layout: border-box and client size, font, line height, padding, border. */
export function boxLayout(el) {
  const r = el.getBoundingClientRect();
  const cs = getComputedStyle(el);
  const lh = parseFloat(cs.lineHeight); // "normal" gives NaN: left to the font
  return {
    width: r.width, height: r.height, client_width: el.clientWidth, client_height: el.clientHeight,
    font_family: cs.fontFamily.slice(0, 300), font_size_px: px(cs.fontSize),
    line_height_px: Number.isFinite(lh) ? lh : null,
    padding: [cs.paddingTop, cs.paddingRight, cs.paddingBottom, cs.paddingLeft].map(px),
    border: [cs.borderTopWidth, cs.borderRightWidth, cs.borderBottomWidth, cs.borderLeftWidth].map(px),
  };
}
