// Persistent queue of numbered sample batches (localStorage), so that samples survive reloads,
// network cuts and closed tabs until the server has acknowledged them.
//
// Samples are appended to an *open* batch (columns). Sealing gives it the next batch number of
// this task (a counter kept in localStorage) and freezes its JSON body: a re-send is byte for
// byte the same request, which the server recognises and acknowledges without storing twice.
'use strict';

export const COLUMNS = [
  'signal', 'frame', 'x', 'y', 'snippet', 'char_index', 'page_timer_ms', 'head_in_box', 'epoch_ms',
  'turn_id', 'viewport_w', 'viewport_h', 'box_left', 'box_top', 'box_width', 'box_height',
  'scroll_left', 'scroll_top', 'no_face',
];

const NS = 'ifllm.logger';

function emptyColumns() {
  const cols = {};
  for (const c of COLUMNS) cols[c] = [];
  return cols;
}

export function clientId(storage) {
  const key = `${NS}.client`;
  let id = storage.getItem(key);
  if (!id) {
    id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/-/g, '');
    storage.setItem(key, id);
  }
  return id;
}

export class BatchQueue {
  constructor(taskId, { storage = window.localStorage, maxRows = 400 } = {}) {
    this.taskId = taskId;
    this.storage = storage;
    this.maxRows = maxRows;
    this.prefix = `${NS}.task${taskId}`;
    this.client = clientId(storage);
    this.memory = null; // used when localStorage is full or unavailable
    this.open = this._read('open') || emptyColumns();
    this.openRows = this.open.signal.length;
  }

  _read(name) {
    try {
      const raw = this.storage.getItem(`${this.prefix}.${name}`);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  _write(name, value) {
    try {
      this.storage.setItem(`${this.prefix}.${name}`, JSON.stringify(value));
      return true;
    } catch (e) {
      return false; // quota: the caller keeps the data in memory
    }
  }

  pending() {
    return this.memory || this._read('pending') || [];
  }

  _savePending(list) {
    if (this._write('pending', list)) {
      this.memory = null;
    } else {
      this.memory = list;
    }
  }

  nextSeq() {
    // Read-increment-write in one synchronous step: other tabs of the same task share the counter.
    const key = `${this.prefix}.seq`;
    const seq = Number(this.storage.getItem(key) || '0');
    this.storage.setItem(key, String(seq + 1));
    return seq;
  }

  append(row) {
    for (const c of COLUMNS) this.open[c].push(row[c] === undefined ? null : row[c]);
    this.openRows += 1;
    if (this.openRows >= this.maxRows) this.seal();
  }

  /** Persist the open batch (called every second and on pagehide): a reload loses nothing. */
  saveOpen() {
    this._write('open', this.open);
  }

  _body(seq, columns) {
    return JSON.stringify({ seq, idempotency_key: `${this.client}:${this.taskId}:${seq}`, columns });
  }

  /** Close the open batch: give it a number and queue it for sending. */
  seal() {
    if (this.openRows === 0) return null;
    const seq = this.nextSeq();
    const batch = { seq, n: this.openRows, body: this._body(seq, this.open) };
    const list = this.pending();
    list.push(batch);
    this._savePending(list);
    this.open = emptyColumns();
    this.openRows = 0;
    this._write('open', this.open);
    return batch;
  }

  ack(seq) {
    this._savePending(this.pending().filter((b) => b.seq !== seq));
  }

  /** The server holds another batch under this number (another tab): renumber, same samples. */
  renumber(seq) {
    const list = this.pending();
    const batch = list.find((b) => b.seq === seq);
    if (!batch) return null;
    const columns = JSON.parse(batch.body).columns;
    batch.seq = this.nextSeq();
    batch.body = this._body(batch.seq, columns);
    this._savePending(list);
    return batch;
  }

  /**
   * The server refused this batch as too large (413): replace it, in place, by its two halves
   * under new numbers (the refused number was never stored). A single sample too large to ever
   * be stored is dropped with the reason. Returns the new batches.
   */
  split(seq) {
    const list = this.pending();
    const i = list.findIndex((b) => b.seq === seq);
    if (i < 0) return [];
    const columns = JSON.parse(list[i].body).columns;
    const n = columns.signal.length;
    if (n <= 1) {
      this.drop(seq, 'a single sample larger than the server accepts');
      return [];
    }
    const halves = [[0, Math.ceil(n / 2)], [Math.ceil(n / 2), n]].map(([a, b]) => {
      const part = {};
      for (const c of COLUMNS) part[c] = columns[c].slice(a, b);
      const s = this.nextSeq();
      return { seq: s, n: b - a, body: this._body(s, part) };
    });
    list.splice(i, 1, ...halves);
    this._savePending(list);
    return halves;
  }

  drop(seq, reason) {
    const rejected = this._read('rejected') || [];
    rejected.push({ seq, reason: String(reason).slice(0, 500) });
    this._write('rejected', rejected.slice(-20));
    this.ack(seq);
  }
}
