// The worker's answers in the chat (ratings, preference, better-than-previous) go through a
// persistent queue like the samples: kept in localStorage until the server acknowledges them,
// sent one at a time in the order given, retried with backoff through network cuts, a busy
// server and reloads. Saving a rating is idempotent (it sets a field), so a re-send after a lost
// acknowledgement is harmless.
'use strict';

const NS = 'ifllm.answers';

export class AnswerQueue {
  /**
   * @param {object} o
   * @param {number} o.taskId
   * @param {string} o.csrfToken
   * @param {(item, data) => void} o.onSaved  the server acknowledged one answer
   * @param {(item, message) => void} o.onRejected  the server refused it (4xx): it is dropped
   * @param {(state) => void} o.onState  'saving' | 'saved' | 'retrying'
   */
  constructor({ taskId, csrfToken, onSaved, onRejected, onState, storage = window.localStorage }) {
    this.key = `${NS}.task${taskId}`;
    this.csrfToken = csrfToken;
    this.onSaved = onSaved;
    this.onRejected = onRejected;
    this.onState = onState;
    this.storage = storage;
    this.memory = null;
    this.sending = null;
    this.backoffMs = 0;
    this.timer = null;
    window.addEventListener('online', () => this.flush());
  }

  pending() {
    if (this.memory) return this.memory;
    try { return JSON.parse(this.storage.getItem(this.key) || '[]'); } catch (e) { return []; }
  }

  _save(list) {
    try { this.storage.setItem(this.key, JSON.stringify(list)); this.memory = null; } catch (e) { this.memory = list; }
  }

  /** Queue one answer and start sending. */
  push(url, body, meta = {}) {
    const list = this.pending();
    list.push({ id: `${Date.now()}-${Math.random().toString(36).slice(2)}`, url, body, meta });
    this._save(list);
    this.onState('saving');
    return this.flush();
  }

  /** Resolves when everything queued is saved (or a send failed and a retry is scheduled). */
  flush() {
    if (!this.sending) this.sending = this._drain().finally(() => { this.sending = null; });
    return this.sending;
  }

  /** Wait until the queue is empty (retries included). */
  async settled() {
    while (this.pending().length) {
      await this.flush();
      if (this.pending().length) await new Promise((r) => setTimeout(r, 200));
    }
  }

  _drop(id) { this._save(this.pending().filter((i) => i.id !== id)); }

  async _drain() {
    for (;;) {
      const item = this.pending()[0];
      if (!item) { this.onState('saved'); return true; }
      this.onState('saving');
      let response;
      try {
        response = await fetch(item.url, {
          method: 'POST', credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRFToken': this.csrfToken },
          body: JSON.stringify(item.body),
        });
      } catch (e) {
        this._retry();
        return false;
      }
      let data = {};
      try { data = await response.json(); } catch (e) { /* empty body */ }
      if (response.ok) {
        this.backoffMs = 0;
        this._drop(item.id);
        this.onSaved(item, data);
      } else if (response.status >= 400 && response.status < 500 && response.status !== 408
                 && response.status !== 429) {
        // Refused on its merits (a bug, a closed turn, an ended session): retrying cannot help.
        this._drop(item.id);
        this.onRejected(item, data.detail || Object.values(data).flat().join(' ') || `HTTP ${response.status}`,
          response.status);
      } else { // 5xx, 503 busy, 429: nothing was stored, try again
        this._retry();
        return false;
      }
    }
  }

  _retry() {
    this.backoffMs = Math.min(15000, this.backoffMs ? this.backoffMs * 2 : 500);
    this.onState('retrying');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.backoffMs * (0.75 + Math.random() * 0.5));
  }
}
