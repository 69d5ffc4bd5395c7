// One tab per task: the pages that run the eye tracker (calibration, chat) import this module
// FIRST. It holds a Web Lock (`navigator.locks`) named after the task for as long as the page is
// open. A second tab of the same browser (same session, so the server cannot tell the two apart)
// does not get the lock: its top-level `await` never finishes, so the importing page's code never
// runs (no camera, no WebGazer, no logger), and it says that the task is open in another tab,
// with a button that reloads it once the worker has closed the other one. (It does not take the
// lock by itself when it frees up: a tab that moves from calibration to the chat frees the lock
// for a moment, and the waiting tab would take the task from the tab the worker is using.)
// Other browsers/sessions are kept apart by the server (`services.identity`).
'use strict';

const configEl = document.querySelector('#calibrate-config, #chat-config');
const config = configEl ? JSON.parse(configEl.textContent) : {};
const lock = config.tabLock;
// A page that navigates from calibration to chat releases the lock as its document unloads; the
// next page may ask a moment before that: wait this long before saying "another tab".
const GRACE_MS = 1500;

function showOtherTab() {
  const main = document.getElementById('main');
  const box = document.createElement('section');
  box.id = 'other-tab';
  box.setAttribute('role', 'alert');
  const h = document.createElement('h1');
  h.textContent = lock.title;
  const p = document.createElement('p');
  p.className = 'notice';
  p.textContent = lock.message;
  const p2 = document.createElement('p');
  p2.textContent = lock.closed;
  const actions = document.createElement('div');
  actions.className = 'actions';
  const again = document.createElement('button');
  again.type = 'button';
  again.id = 'other-tab-continue';
  again.textContent = lock.continue;
  again.addEventListener('click', () => location.reload());
  actions.append(again);
  box.append(h, p, p2, actions);
  main.prepend(box);
  document.body.dataset.tab = 'elsewhere';
  document.title = lock.title;
}

function never() { return new Promise(() => {}); }

async function holdTaskTab() {
  if (!lock) return;
  if (!navigator.locks) {
    location.href = `${config.unsupportedUrl}?reason=${encodeURIComponent('no Web Locks API')}`;
    await never();
  }
  // Queued for at most GRACE_MS; once granted, never released: the promise the callback returns
  // never settles, so the lock is held until this document goes away (closed, reloaded, left).
  const held = await new Promise((resolve) => {
    navigator.locks.request(lock.name, { signal: AbortSignal.timeout(GRACE_MS) }, () => {
      resolve(true);
      return never();
    }).catch(() => resolve(false)); // aborted: another tab holds it
  });
  document.body.dataset.tab = held ? 'held' : 'elsewhere';
  if (held) return;
  showOtherTab();
  await never();
}

await holdTaskTab();
