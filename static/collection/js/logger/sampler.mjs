// Samples gaze and mouse on a fixed clock (default every 100 ms), not once per tracker frame:
// every tick gives, per signal, one row in viewport coordinates ("abs") and one row per response
// box ("box1", "box2") with the point relative to the box's content (scroll offset included),
// the character index under the point and a snippet around it. "abs" rows carry the page's
// scroll offset; box rows the box's rectangle and scroll offset. A tick without a face is a
// row like any other, flagged no_face, with null coordinates.
'use strict';

const SNIPPET_RADIUS = 15;

/** Character offset under a viewport point inside `box` (its single text node), or null. */
export function caretIndex(box, x, y) {
  let node = null;
  let offset = null;
  if (document.caretPositionFromPoint) {
    const pos = document.caretPositionFromPoint(x, y);
    if (pos) { node = pos.offsetNode; offset = pos.offset; }
  } else if (document.caretRangeFromPoint) {
    const range = document.caretRangeFromPoint(x, y);
    if (range) { node = range.startContainer; offset = range.startOffset; }
  }
  if (node === null || node.nodeType !== Node.TEXT_NODE || node.parentNode !== box) return null;
  // The box holds exactly one text node with the stored answer, so the offset is the index.
  return offset;
}

export class Sampler {
  constructor({ intervalMs, gaze, boxes, turnId, onRow }) {
    this.intervalMs = intervalMs;
    this.gaze = gaze; // { latest(): {x, y, headInBox} | null }
    this.boxes = boxes; // () => [{ frame: 'box1', el }]
    this.turnId = turnId; // () => number | null
    this.onRow = onRow;
    this.mouse = null;
    this.timer = null;
    this.generated = 0;
    this.paused = false;
    window.addEventListener('mousemove', (e) => { this.mouse = { x: e.clientX, y: e.clientY }; }, { passive: true });
  }

  start() {
    this.startedAt = performance.now();
    this.k = 0;
    const step = () => {
      this.k += 1;
      // Fixed schedule from the start, so the clock does not drift with timer latency.
      let next = this.startedAt + this.k * this.intervalMs;
      const now = performance.now();
      if (next < now) { // throttled (background tab): skip missed ticks rather than invent them
        this.k = Math.ceil((now - this.startedAt) / this.intervalMs);
        next = this.startedAt + this.k * this.intervalMs;
      }
      this.timer = setTimeout(step, next - now);
      if (!this.paused) this.tick();
    };
    this.timer = setTimeout(step, this.intervalMs);
  }

  stop() { clearTimeout(this.timer); this.timer = null; }

  tick() {
    const epoch = Date.now();
    const pageTimer = performance.now();
    const gazePoint = this.gaze.latest();
    const noFace = gazePoint === null;
    const headInBox = gazePoint ? (gazePoint.headInBox ?? null) : null;
    const common = {
      page_timer_ms: pageTimer, epoch_ms: epoch, turn_id: this.turnId(), no_face: noFace, head_in_box: headInBox,
      viewport_w: window.innerWidth, viewport_h: window.innerHeight,
    };
    const boxes = this.boxes().map((b) => ({
      ...b, rect: b.el.getBoundingClientRect(), text: b.text ?? b.el.textContent,
    }));
    for (const [signal, point] of [['gaze', gazePoint], ['mouse', this.mouse]]) {
      this.emit({
        ...common, signal, frame: 'abs', x: point ? point.x : null, y: point ? point.y : null,
        snippet: null, char_index: null, scroll_left: window.scrollX, scroll_top: window.scrollY,
        box_left: null, box_top: null, box_width: null, box_height: null,
      });
      for (const b of boxes) {
        const r = b.rect;
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
          const i = b.text ? caretIndex(b.el, point.x, point.y) : null;
          if (i !== null) {
            row.char_index = i;
            row.snippet = b.text.slice(Math.max(0, i - SNIPPET_RADIUS), i + SNIPPET_RADIUS);
          }
        } else {
          row.x = -1; row.y = -1;
        }
        this.emit(row);
      }
    }
  }

  emit(row) {
    this.generated += 1;
    this.onRow(row);
  }
}
