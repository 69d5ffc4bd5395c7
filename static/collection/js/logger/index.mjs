// Wires the sampler, the persistent queue and the sender for one task page, and exposes
// `window.ifllmLogger` (stats and controls used by the browser tests and the idle timer).
'use strict';

import { BatchQueue } from './queue.mjs';
import { Sampler } from './sampler.mjs';
import { Sender } from './transport.mjs';

export function startLogger({ taskId, url, csrfToken, csrfParam, intervalMs, batchIntervalMs, gaze, boxes, turnId,
  onStatus }) {
  const queue = new BatchQueue(taskId);
  // Samples left in the open batch by a previous page (reload, crash) are sealed and sent first.
  queue.seal();
  const sender = new Sender({ url, csrfToken, csrfParam, queue, onStatus });
  const sampler = new Sampler({ intervalMs, gaze, boxes, turnId, onRow: (row) => queue.append(row) });

  const persist = setInterval(() => queue.saveOpen(), 1000);
  const periodic = setInterval(() => { queue.seal(); sender.flush(); }, batchIntervalMs);
  window.addEventListener('online', () => sender.flush());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') { queue.seal(); sender.flush(); }
  });
  window.addEventListener('pagehide', () => {
    queue.seal();
    sender.beacon();
  });

  const logger = {
    queue, sender, sampler,
    get stats() {
      return { generated: sampler.generated, pending: queue.pending().length, openRows: queue.openRows,
        samples: { ...sampler.counts }, rates: sampler.rates(), ...sender.stats };
    },
    /** End of a turn: send everything logged so far. */
    flush() { queue.seal(); return sender.flush(); },
    /** Leaving the page on purpose: stop sampling, then send everything. */
    async finish() {
      sampler.stop();
      clearInterval(periodic);
      clearInterval(persist);
      queue.seal();
      return sender.flush();
    },
    /** Tests: stop generating samples without sending anything. */
    pauseClock() { sampler.paused = true; queue.saveOpen(); },
  };
  sampler.start();
  sender.flush();
  window.ifllmLogger = logger;
  return logger;
}
