// Which character of an answer lies under a viewport point: the character whose own box holds the
// point, or none ("in the box, off the text"). The browser's caret API alone is not enough: below
// or beside the text it returns the nearest caret position (below the text: the end of the text),
// so a look at the blank part of a box was recorded as the answer's last character. Pure logic
// here (tested in node); the DOM calls are in sampler.mjs.
'use strict';

/** Whether (x, y) lies inside one of `rects` (DOMRect-like: left, right, top, bottom, width, height). */
export function pointInRects(rects, x, y) {
  for (const r of rects) {
    if (r.width > 0 && r.height > 0 && x >= r.left && x < r.right && y >= r.top && y < r.bottom) return true;
  }
  return false;
}

/**
 * The index of the character whose box contains (x, y), or null.
 *
 * `offset` is the caret offset the browser gave for the point: a boundary between characters, so
 * the character under the point is the one after it or the one before it (the caret goes to the
 * nearer edge of the character). `length` is the text's length and `rectsOf(i)` the client
 * rectangles of character i (several when it wraps). A point outside both candidates' boxes (below
 * the last line, right of a short line, between lines) is on no character.
 */
export function charAtPoint(offset, length, rectsOf, x, y) {
  if (offset === null || offset === undefined || length <= 0) return null;
  for (const i of [offset, offset - 1]) {
    if (i >= 0 && i < length && pointInRects(rectsOf(i), x, y)) return i;
  }
  return null;
}
