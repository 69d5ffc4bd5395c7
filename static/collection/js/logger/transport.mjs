// Sends queued batches to the server: one at a time in order, acknowledged by the server,
// retried with exponential backoff, and handed to navigator.sendBeacon when the page goes away.
'use strict';

/** A 400 that says the body was too large (an older server, or a proxy), not that it was wrong. */
async function tooLarge(response) {
  try {
    const data = await response.clone().json();
    return data.code === 'too_large';
  } catch (e) {
    return false;
  }
}

export class Sender {
  constructor({ url, csrfToken, csrfParam, queue, onStatus = () => {} }) {
    this.url = url;
    this.csrfToken = csrfToken;
    this.beaconUrl = `${url}${url.includes('?') ? '&' : '?'}${csrfParam}=${encodeURIComponent(csrfToken)}`;
    this.queue = queue;
    this.onStatus = onStatus;
    this.sending = null;
    this.backoffMs = 0;
    this.retryTimer = null;
    this.stopped = false;
    this.stats = { sent: 0, acked: 0, duplicates: 0, failures: 0, renumbered: 0, split: 0 };
  }

  /** Send everything pending; resolves when the queue is empty or a send failed (retry later). */
  flush() {
    if (!this.sending) {
      this.sending = this._drain().finally(() => { this.sending = null; });
    }
    return this.sending;
  }

  async _drain() {
    while (!this.stopped) {
      const batch = this.queue.pending()[0];
      if (!batch) {
        this.onStatus('idle');
        return true;
      }
      let response;
      try {
        this.stats.sent += 1;
        response = await fetch(this.url, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRFToken': this.csrfToken,
            'Idempotency-Key': JSON.parse(batch.body).idempotency_key },
          body: batch.body,
        });
      } catch (e) {
        this._scheduleRetry('offline');
        return false;
      }
      if (response.status === 200 || response.status === 201) {
        if (response.status === 200) this.stats.duplicates += 1;
        this.stats.acked += 1;
        this.backoffMs = 0;
        this.queue.ack(batch.seq);
      } else if (response.status === 409) {
        this.stats.renumbered += 1;
        this.queue.renumber(batch.seq);
      } else if (response.status === 413 || (response.status === 400 && await tooLarge(response))) {
        // Too large for the server's limits: send it as two halves, never drop it.
        this.stats.split += 1;
        this.queue.split(batch.seq);
      } else if (response.status === 400) {
        // A bug in the page, not a network problem: retrying would block the queue forever.
        const text = await response.text();
        console.error('ifllm: batch rejected', batch.seq, text);
        this.queue.drop(batch.seq, text);
      } else if (response.status === 403 || response.status === 404) {
        this.onStatus('forbidden');
        return false; // session gone: keep the data, stop trying
      } else {
        this._scheduleRetry(`http ${response.status}`);
        return false;
      }
    }
    return false;
  }

  _scheduleRetry(reason) {
    this.stats.failures += 1;
    this.backoffMs = Math.min(30000, this.backoffMs ? this.backoffMs * 2 : 1000);
    const delay = this.backoffMs * (0.75 + Math.random() * 0.5);
    this.onStatus('retrying', reason, delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.flush(), delay);
  }

  /** Page is going away: queue stays in localStorage; beacons deliver what they can now. */
  beacon() {
    if (!navigator.sendBeacon) return 0;
    let n = 0;
    for (const batch of this.queue.pending()) {
      const ok = navigator.sendBeacon(this.beaconUrl, new Blob([batch.body], { type: 'text/plain' }));
      if (!ok) break; // over the browser's beacon budget: the rest is sent on the next visit
      n += 1;
    }
    return n;
  }
}
