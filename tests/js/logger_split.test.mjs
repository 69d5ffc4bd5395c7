// The page's batch queue and sender against a fake server with a body limit: a batch refused as
// too large (413) is split and re-sent until every sample is stored once; nothing is dropped.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BatchQueue, COLUMNS } from '../../static/collection/js/logger/queue.mjs';
import { Sender } from '../../static/collection/js/logger/transport.mjs';

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
  removeItem(k) { this.items.delete(k); }
}

function row(i) {
  const r = {};
  for (const c of COLUMNS) r[c] = null;
  return { ...r, signal: 'gaze', frame: 'abs', x: i, y: i, page_timer_ms: i, epoch_ms: 1.7e12 + i,
    viewport_w: 1000, viewport_h: 800, no_face: false };
}

/** A server that stores batches by seq and refuses bodies over `maxBytes` with `refusal`. */
function fakeServer({ maxBytes, refusal }) {
  const stored = new Map();
  const calls = [];
  const fetch = async (url, { body }) => {
    calls.push(body.length);
    if (body.length > maxBytes) return refusal();
    const { seq, columns } = JSON.parse(body);
    if (stored.has(seq)) return new Response('{}', { status: 200 });
    stored.set(seq, columns.x);
    return new Response('{}', { status: 201 });
  };
  return { stored, calls, fetch };
}

for (const [name, refusal] of [
  ['413 from the API', () => new Response('{"code":"too_large"}', { status: 413 })],
  ['413 html from a proxy', () => new Response('<h1>413</h1>', { status: 413 })],
  ['400 too_large', () => new Response('{"code":"too_large","detail":"x"}', { status: 400 })],
]) {
  test(`a too-large batch is split and re-sent, not dropped (${name})`, async () => {
    const server = fakeServer({ maxBytes: 6000, refusal });
    globalThis.fetch = server.fetch;
    const storage = new MemoryStorage();
    const queue = new BatchQueue(7, { storage, maxRows: 1000 });
    for (let i = 0; i < 300; i += 1) queue.append(row(i));
    queue.seal();
    const sender = new Sender({ url: '/b/', csrfToken: 't', csrfParam: 'csrf_token', queue });
    assert.equal(await sender.flush(), true);
    assert.equal(queue.pending().length, 0);
    const xs = [...server.stored.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, x]) => x);
    assert.deepEqual(xs, [...Array(300).keys()]); // every sample once, in order
    assert.ok(sender.stats.split >= 3);
    assert.equal(storage.getItem('ifllm.logger.task7.rejected'), null);
  });
}

test('a single sample that can never fit is dropped with its reason, and the rest still goes', async () => {
  const server = fakeServer({ maxBytes: 10, refusal: () => new Response('', { status: 413 }) });
  globalThis.fetch = server.fetch;
  const storage = new MemoryStorage();
  const queue = new BatchQueue(8, { storage });
  queue.append(row(1));
  queue.append(row(2));
  queue.seal();
  const sender = new Sender({ url: '/b/', csrfToken: 't', csrfParam: 'csrf_token', queue });
  assert.equal(await sender.flush(), true);
  const rejected = JSON.parse(storage.getItem('ifllm.logger.task8.rejected'));
  assert.equal(rejected.length, 2);
  assert.match(rejected[0].reason, /larger than the server accepts/);
});
