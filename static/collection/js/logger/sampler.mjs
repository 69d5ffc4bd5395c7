// Turns the tracker's predictions and the mouse's movements into sample rows. Every sample gives,
// per signal, one row in viewport coordinates ("abs") and one row per response box ("box1",
// "box2") with the point relative to the box's content (scroll offset included), the index of the
// character under the point (only when the point is inside that character's box: hittest.mjs) and
// a snippet around it. "abs" rows carry the page's scroll offset; box rows the box's rectangle and
// scroll offset.
//
// The two signals do not wait on each other or on a shared clock (a clock timer on the page waited
// for WebGazer's ~100 ms face-mesh frames and delivered 3.6-4.8 Hz of a promised 10):
// * gaze: one sample per WebGazer prediction, from its own callback (setGazeListener), at most one
//   per `intervalMs` slot (the study's sampling clock is the cap). A frame without a face is a
//   row like any other, flagged no_face, with null coordinates (as is a frame with a face but no
//   prediction yet); head_in_box comes from the tracker's eye patches (headbox.mjs).
// * mouse: the position at every `intervalMs` slot, taken from the pointer events' own timestamps
//   (with the events the browser coalesced while the page was busy), so a slot that passed while
//   WebGazer held the main thread still gets the position the mouse had at that time; it is
//   written when the page is free again (at most MAX_CATCH_UP_MS late; older slots, e.g. of a
//   background tab, are skipped rather than invented).
'use strict';

import { charAtPoint } from './hittest.mjs';

const SNIPPET_RADIUS = 15;
/** Mouse slots older than this when the page gets to them are skipped (a throttled tab; a hidden
 * one is skipped anyway). Long enough for a slow face-mesh frame on a loaded computer. */
const MAX_CATCH_UP_MS = 3000;

/** Caret offset (and its text node) the browser gives for a viewport point, or null. */
function caretAt(x, y) {
  if (document.caretPositionFromPoint) {
    const pos = document.caretPositionFromPoint(x, y);
    return pos ? { node: pos.offsetNode, offset: pos.offset } : null;
  }
  if (document.caretRangeFromPoint) {
    const range = document.caretRangeFromPoint(x, y);
    return range ? { node: range.startContainer, offset: range.startOffset } : null;
  }
  return null;
}

/**
 * Index of the character under a viewport point inside `box` (its single text node), or null when
 * the point is on no character of it: below or beside the text, between lines.
 */
export function caretIndex(box, x, y) {
  const caret = caretAt(x, y);
  if (!caret || caret.node.nodeType !== Node.TEXT_NODE || caret.node.parentNode !== box) return null;
  const node = caret.node;
  const range = document.createRange();
  // The box holds exactly one text node with the stored answer, so the offset is the index.
  return charAtPoint(caret.offset, node.length, (i) => {
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    return range.getClientRects();
  }, x, y);
}

export class Sampler {
  constructor({ intervalMs, gaze, boxes, turnId, onRow }) {
    this.intervalMs = intervalMs;
    this.gaze = gaze; // onPrediction(fn(point|null, timeMs)), faceFound(), headInBox()
    this.boxes = boxes; // () => [{ frame: 'box1', el, text }]
    this.turnId = turnId; // () => number | null
    this.onRow = onRow;
    this.generated = 0;
    this.counts = { gaze: 0, mouse: 0 }; // samples (instants) per signal, for the page's own stats
    this.paused = false;
    this.running = false;
    this.mouse = null; // position at the last slot written
    this.trail = []; // pointer positions not yet assigned to a slot: {t, x, y}
    this.timer = null;
    this.onPointer = (e) => {
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      for (const c of (events.length ? events : [e])) this.trail.push({ t: c.timeStamp, x: c.clientX, y: c.clientY });
    };
  }

  start() {
    this.startedAt = performance.now();
    this.running = true;
    this.gazeSlot = -1;
    this.mouseSlot = 0; // next mouse slot to write (slot k is at startedAt + k * intervalMs)
    this.gaze.onPrediction((point, t) => this.onGaze(point, t ?? performance.now()));
    window.addEventListener('pointermove', this.onPointer, { passive: true });
    this.timer = setInterval(() => this.mouseCatchUp(performance.now()), this.intervalMs);
  }

  stop() {
    this.running = false;
    clearInterval(this.timer);
    this.timer = null;
    window.removeEventListener('pointermove', this.onPointer);
  }

  /** A tracker prediction (or a frame without one): a gaze sample unless this slot has one. */
  onGaze(point, t) {
    if (!this.running || this.paused) return;
    const slot = Math.floor((t - this.startedAt) / this.intervalMs);
    if (slot <= this.gazeSlot) return;
    this.gazeSlot = slot;
    const noFace = !this.gaze.faceFound();
    const p = point && Number.isFinite(point.x) && Number.isFinite(point.y) ? point : null;
    this.sample('gaze', noFace ? null : p, t, { no_face: noFace, head_in_box: Boolean(this.gaze.headInBox()) });
  }

  /** Write every mouse slot up to `now` with the position the mouse had at the slot's time. */
  mouseCatchUp(now) {
    if (!this.running) return;
    const slotOf = (k) => this.startedAt + k * this.intervalMs;
    if (now - slotOf(this.mouseSlot) > MAX_CATCH_UP_MS || document.visibilityState === 'hidden') {
      // A throttled or hidden tab: skip the missed slots rather than invent them.
      this.mouseSlot = Math.floor((now - this.startedAt) / this.intervalMs);
    }
    while (slotOf(this.mouseSlot) <= now) {
      const t = slotOf(this.mouseSlot);
      while (this.trail.length && this.trail[0].t <= t) {
        const e = this.trail.shift();
        this.mouse = { x: e.x, y: e.y };
      }
      this.mouseSlot += 1;
      if (!this.paused) this.sample('mouse', this.mouse, t, { no_face: false, head_in_box: null });
    }
    if (this.paused) this.trail = [];
  }

  /** One instant of one signal: its abs row and one row per box. */
  sample(signal, point, t, flags) {
    const epoch = Math.round(Date.now() - (performance.now() - t)); // the column is integer ms
    const common = {
      page_timer_ms: t, epoch_ms: epoch, turn_id: this.turnId(), ...flags,
      viewport_w: window.innerWidth, viewport_h: window.innerHeight,
    };
    this.counts[signal] += 1;
    this.emit({
      ...common, signal, frame: 'abs', x: point ? point.x : null, y: point ? point.y : null,
      snippet: null, char_index: null, scroll_left: window.scrollX, scroll_top: window.scrollY,
      box_left: null, box_top: null, box_width: null, box_height: null,
    });
    for (const b of this.boxes()) {
      const r = b.el.getBoundingClientRect();
      const text = b.text ?? b.el.textContent;
      const row = {
        ...common, signal, frame: b.frame, snippet: null, char_index: null,
        box_left: r.left, box_top: r.top, box_width: r.width, box_height: r.height,
        scroll_left: b.el.scrollLeft, scroll_top: b.el.scrollTop,
      };
      if (!point) {
        row.x = null; row.y = null;
      } else if (point.x >= r.left && point.x <= r.right && point.y >= r.top && point.y <= r.bottom) {
        row.x = point.x - r.left + b.el.scrollLeft;
        row.y = point.y - r.top + b.el.scrollTop;
        const i = text ? caretIndex(b.el, point.x, point.y) : null;
        if (i !== null) {
          row.char_index = i;
          row.snippet = text.slice(Math.max(0, i - SNIPPET_RADIUS), i + SNIPPET_RADIUS);
        }
      } else {
        row.x = -1; row.y = -1;
      }
      this.emit(row);
    }
  }

  emit(row) {
    this.generated += 1;
    this.onRow(row);
  }

  /** Samples per second of each signal since the start (what the page achieved). */
  rates(now = performance.now()) {
    const s = Math.max(1e-3, (now - this.startedAt) / 1000);
    return { gaze_hz: this.counts.gaze / s, mouse_hz: this.counts.mouse / s, seconds: s };
  }
}
