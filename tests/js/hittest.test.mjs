// The character hit test and the head-in-box test, without a browser: a point below or beside the
// text is on no character (the caret API alone said "the last character"), a point inside a
// character's box is that character; both eyes inside WebGazer's feedback box is "head in box".
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { eyesInBox } from '../../static/collection/js/headbox.mjs';
import { charAtPoint, pointInRects } from '../../static/collection/js/logger/hittest.mjs';

// A monospace line layout: 10 px wide characters, 20 px lines of 8 characters, text of 20 chars
// (two full lines and a last line of 4 characters ending at x = 40, y = 60).
const W = 10;
const H = 20;
const PER_LINE = 8;
const LENGTH = 20;
function rectsOf(i) {
  const left = (i % PER_LINE) * W;
  const top = Math.floor(i / PER_LINE) * H;
  return [{ left, right: left + W, top, bottom: top + H, width: W, height: H }];
}
/** What caretPositionFromPoint does: the nearest caret boundary, the text's end below the text. */
function caret(x, y) {
  if (y >= Math.ceil(LENGTH / PER_LINE) * H) return LENGTH;
  const line = Math.min(Math.floor(y / H), Math.floor((LENGTH - 1) / PER_LINE));
  const start = line * PER_LINE;
  const end = Math.min(LENGTH, start + PER_LINE);
  return Math.max(start, Math.min(end, start + Math.round(x / W)));
}

test('a point inside a character is that character (both halves of it)', () => {
  assert.equal(charAtPoint(caret(12, 5), LENGTH, rectsOf, 12, 5), 1); // left half: caret before it
  assert.equal(charAtPoint(caret(18, 5), LENGTH, rectsOf, 18, 5), 1); // right half: caret after it
  assert.equal(charAtPoint(caret(35, 45), LENGTH, rectsOf, 35, 45), 19); // the last character
});

test('below the text, right of a short line or before it, no character is hit', () => {
  const below = caret(15, 150);
  assert.equal(below, LENGTH); // the caret API's answer: the end of the text
  assert.equal(charAtPoint(below, LENGTH, rectsOf, 15, 150), null);
  assert.equal(charAtPoint(caret(70, 45), LENGTH, rectsOf, 70, 45), null); // right of the last line
  assert.equal(charAtPoint(caret(-5, 5), LENGTH, rectsOf, -5, 5), null); // left padding
  assert.equal(charAtPoint(null, LENGTH, rectsOf, 5, 5), null);
  assert.equal(charAtPoint(0, 0, rectsOf, 5, 5), null); // empty text
});

test('empty rectangles (a collapsed newline) hold no point', () => {
  assert.equal(pointInRects([{ left: 5, right: 5, top: 0, bottom: 20, width: 0, height: 20 }], 5, 10), false);
  assert.equal(pointInRects([{ left: 0, right: 10, top: 0, bottom: 20, width: 10, height: 20 }], 5, 10), true);
});

test('head in box: both eyes inside the centre square of the image', () => {
  const eye = (x, y) => ({ imagex: x, imagey: y, width: 40, height: 20 });
  // 640x480 image: box side 0.66 * 480 = 316.8, from x 161.6 to 478.4, y 81.6 to 398.4
  assert.equal(eyesInBox({ left: eye(250, 200), right: eye(350, 200) }, 640, 480), true);
  assert.equal(eyesInBox({ left: eye(100, 200), right: eye(350, 200) }, 640, 480), false); // one eye left of it
  assert.equal(eyesInBox({ left: eye(250, 390), right: eye(350, 390) }, 640, 480), false); // too low
  assert.equal(eyesInBox(false, 640, 480), false); // no face
  assert.equal(eyesInBox({ left: eye(250, 200), right: eye(350, 200) }, 0, 0), false); // no image yet
});
