// Review queue keys: one keystroke per move or call (crowd/review_views.py). A call is POSTed with
// fetch (the form's own fields, CSRF token included) and the page then opens the next task the
// server names. The buttons are plain forms, so everything also works without this script.
'use strict';

const root = document.getElementById('rq');
const form = document.getElementById('rq-form');
const help = document.getElementById('rq-help');
const status = document.getElementById('rq-status');
const reasons = document.getElementById('rq-reasons');
const reasonCodes = reasons ? [...reasons.querySelectorAll('li')].map((li) => li.dataset.reason) : [];
let picking = false; // after "x": waiting for the reason's number
let busy = false;

// Keys typed into a text field belong to the field (the note, a search box), not to the queue.
const NOT_TEXT = new Set(['range', 'checkbox', 'radio', 'button', 'submit', 'reset', 'color', 'file']);
export function isTyping(el) {
  if (!el) return false;
  if (el.isContentEditable || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT') return true;
  return el.tagName === 'INPUT' && !NOT_TEXT.has((el.type || 'text').toLowerCase());
}

function say(text, kind = '') {
  if (!status) return;
  status.textContent = text;
  status.dataset.kind = kind;
}

function go(id) {
  const link = document.getElementById(id);
  if (link) window.location.assign(link.href);
}

function setPicking(on) {
  picking = on && Boolean(reasons);
  if (reasons) reasons.hidden = !picking;
  root.classList.toggle('rq-picking', picking);
  if (picking) say('Exclude: press 1–6 for the reason, Esc cancels.', 'pick');
  else say('');
}

async function save(call, reason = '') {
  if (!form || busy) return;
  busy = true;
  const body = new FormData(form);
  body.set('call', call);
  body.set('reason', reason);
  say(`saving ${call}${reason ? ` (${reason.replace('_', ' ')})` : ''}…`, 'busy');
  try {
    const response = await fetch(form.action, {
      method: 'POST', body, credentials: 'same-origin',
      headers: { Accept: 'application/json', 'X-CSRFToken': body.get('csrfmiddlewaretoken') },
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok || !answer.next_url) {
      // A redirect to the login page (the session ended) answers 200 with HTML, not JSON.
      const errors = answer.errors || { __all__: [response.redirected ? 'not logged in any more: reload the page'
        : `HTTP ${response.status}`] };
      say(Object.entries(errors).map(([field, msgs]) => `${field}: ${msgs.join('; ')}`).join(' · '), 'error');
      busy = false;
      return;
    }
    say(`saved: ${answer.call}${answer.reason ? ` (${answer.reason.replace('_', ' ')})` : ''}; task is ${answer.status}`, 'ok');
    window.location.assign(answer.next_url);
  } catch (err) {
    say(`not saved: ${err}`, 'error');
    busy = false;
  }
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
  const key = event.key;
  if (picking) {
    event.preventDefault();
    const n = Number.parseInt(key, 10);
    if (key === 'Escape') setPicking(false);
    else if (n >= 1 && n <= reasonCodes.length) { setPicking(false); save('exclude', reasonCodes[n - 1]); }
    return;
  }
  // Arrows on a focused slider move the replay, not the queue.
  const slider = event.target && event.target.type === 'range';
  const moves = { j: 'rq-next', k: 'rq-prev', ...(slider ? {} : { ArrowRight: 'rq-next', ArrowLeft: 'rq-prev' }) };
  if (key in moves) { event.preventDefault(); go(moves[key]); return; }
  if (key === '?') { event.preventDefault(); help.hidden = !help.hidden; return; }
  if (key === 'Escape' && !help.hidden) { help.hidden = true; return; }
  if (!form) { // may look, not call
    if (['a', 'x', 'f'].includes(key)) say('Calls need the crowd.review_task permission (researcher role).', 'error');
    return;
  }
  if (key === 'a') { event.preventDefault(); save('keep'); }
  else if (key === 'f') { event.preventDefault(); save('flag', form.elements.reason.value); }
  else if (key === 'x') { event.preventDefault(); setPicking(true); }
}

// The replay boxes have the worker's size: shrink them to the column (zoom keeps the points on
// their characters, since everything inside scales together).
function fitReplay() {
  const holder = document.getElementById('rq-replay');
  const boxes = document.getElementById('replay-boxes');
  if (!holder || !boxes) return;
  boxes.style.zoom = '';
  const scale = Math.min(1, holder.clientWidth / Math.max(1, boxes.scrollWidth));
  boxes.style.zoom = String(scale);
  holder.dataset.zoom = scale.toFixed(3);
}

if (root) {
  document.addEventListener('keydown', onKey);
  window.addEventListener('load', fitReplay);
  window.addEventListener('resize', fitReplay);
  root.dataset.keys = 'ready'; // tests wait for this before pressing keys
}
