// The sampler's two clocks without a browser: gaze rows come from the tracker's callback (at most
// one per slot), mouse rows at every slot with the position the pointer had at the slot's time,
// even when the page got to them late (busy main thread); a long stall is skipped, not invented.
import assert from 'node:assert/strict';
import { test } from 'node:test';

const listeners = {};
globalThis.window = {
  innerWidth: 1000, innerHeight: 800, scrollX: 0, scrollY: 0,
  addEventListener: (name, fn) => { listeners[name] = fn; },
  removeEventListener: (name) => { delete listeners[name]; },
};
globalThis.document = { visibilityState: 'visible' };
const { Sampler } = await import('../../static/collection/js/logger/sampler.mjs');

function make({ face = true, inBox = true } = {}) {
  const rows = [];
  let predict = null;
  const gaze = { onPrediction: (fn) => { predict = fn; }, faceFound: () => face, headInBox: () => inBox };
  const s = new Sampler({ intervalMs: 100, gaze, boxes: () => [], turnId: () => 7, onRow: (r) => rows.push(r) });
  s.start();
  clearInterval(s.timer); // the test drives the clock
  s.startedAt = 0;
  return { s, rows, predict: (p, t) => predict(p, t) };
}

test('gaze: one row per prediction, at most one per 100 ms slot, flags from the tracker', () => {
  const { s, rows, predict } = make();
  for (const t of [10, 40, 70, 120, 260, 290]) predict({ x: t, y: 1 }, t);
  predict(null, 330); // a frame with a face but no prediction yet
  s.stop();
  assert.deepEqual(rows.map((r) => r.page_timer_ms), [10, 120, 260, 330]);
  assert.deepEqual(rows.map((r) => r.x), [10, 120, 260, null]);
  assert.ok(rows.every((r) => r.signal === 'gaze' && r.head_in_box === true && r.no_face === false));
});

test('gaze without a face: no_face, no coordinates, head not in box', () => {
  const { s, rows, predict } = make({ face: false, inBox: false });
  predict({ x: 5, y: 5 }, 50);
  s.stop();
  assert.equal(rows[0].no_face, true);
  assert.equal(rows[0].x, null);
  assert.equal(rows[0].head_in_box, false);
});

test('mouse: every slot, with the position at that time, caught up after a busy stretch', () => {
  const { s, rows } = make();
  const move = (t, x) => listeners.pointermove({ timeStamp: t, clientX: x, clientY: 0 });
  move(50, 1);
  move(150, 2);
  move(260, 3);
  s.mouseCatchUp(420); // the page was busy from 0 to 420 ms: slots 0..400 are written now
  assert.deepEqual(rows.map((r) => [r.page_timer_ms, r.x]), [[0, null], [100, 1], [200, 2], [300, 3], [400, 3]]);
  s.mouseCatchUp(5000); // a stall over 3 s (a throttled tab): skipped, not invented
  assert.deepEqual(rows.slice(5).map((r) => r.page_timer_ms), [5000]);
  s.stop();
  assert.ok(rows.every((r) => r.signal === 'mouse' && r.head_in_box === null));
});

test('coalesced pointer events give the positions the busy page did not see one by one', () => {
  const { s, rows } = make();
  const coalesced = [{ timeStamp: 30, clientX: 1 }, { timeStamp: 130, clientX: 2 }, { timeStamp: 230, clientX: 3 }];
  listeners.pointermove({ timeStamp: 230, clientX: 3, getCoalescedEvents: () => coalesced });
  s.mouseCatchUp(300);
  s.stop();
  assert.deepEqual(rows.map((r) => r.x), [null, 1, 2, 3]);
});

test('paused: nothing is generated', () => {
  const { s, rows, predict } = make();
  s.paused = true;
  predict({ x: 1, y: 1 }, 10);
  s.mouseCatchUp(300);
  s.stop();
  assert.equal(rows.length, 0);
});
