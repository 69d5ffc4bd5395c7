// The question-answering page: ask, stream the answer(s), rate, repeat; the logger runs all along.
'use strict';

import './tab_lock.mjs'; // first: a second tab of this task stops here (no camera, no logger)
import { AnswerQueue } from './answers.mjs';
import { startGaze } from './gaze.mjs';
import { boxLayout } from './layout.mjs';
import { startLogger } from './logger/index.mjs';

const config = JSON.parse(document.getElementById('chat-config').textContent);
const pairwise = config.mode === 'pairwise';
const sides = pairwise ? [1, 2] : [1];
const $ = (sel) => document.querySelector(sel);
const boxes = Object.fromEntries(sides.map((s) => [s, $(`#response-${s}`)]));
const queryInput = $('#query');
const askButton = $('#ask');
const finishButton = $('#finish');
const statusLine = $('#status');
const progressLine = $('#progress');

let turns = config.turns;
let current = turns.length ? turns[turns.length - 1] : null;
let progress = config.progress;
let streaming = false;

function url(template, turnId) { return template.replace('/0/', `/${turnId}/`); }

async function postJSON(target, body) {
  let response;
  for (let attempt = 0; ; attempt += 1) {
    response = await fetch(target, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': config.csrfToken },
      body: JSON.stringify(body || {}),
    });
    // 503 = the server was busy and stored nothing: asking again is safe.
    if (response.status !== 503 || attempt >= 8) break;
    say(config.text.busy);
    await new Promise((r) => setTimeout(r, 500 * 2 ** Math.min(attempt, 4)));
  }
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty body */ }
  if (response.status === 403) {
    // Session ended or the task continues in another window: the server's page says which.
    window.location.reload();
  }
  if (!response.ok) {
    const err = new Error(data.detail || Object.values(data).flat().join(' ') || `HTTP ${response.status}`);
    err.status = response.status;
    throw err;
  }
  return data;
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

function setBox(side, text, { empty = false } = {}) {
  const box = boxes[side];
  // textContent, never innerHTML: the box holds one text node equal to the stored answer, so
  // the logger's character offsets index the stored text.
  box.textContent = text;
  box.classList.toggle('empty', empty);
  box.scrollTop = 0;
}

function answered(turn) { return turn && sides.every((s) => turn[`response_${s}`]); }

function missingRatings(turn) {
  const need = ['likert_1'];
  if (pairwise) need.push('likert_2', 'preferred');
  else if (turn.index > 0) need.push('better_than_previous');
  return need.filter((f) => turn[f] === null || turn[f] === undefined);
}

function renderProgress() {
  const left = Math.ceil(progress.seconds_left);
  progressLine.textContent = config.text.progress
    .replace('%(rated)s', progress.rated_turns).replace('%(min)s', progress.min_turns)
    + (left > 0 ? ' ' + config.text.secondsLeft.replace('%(s)s', left) : '');
  finishButton.disabled = !(progress.rated_turns >= progress.min_turns && left <= 0) || streaming;
}

function renderRatings() {
  const form = $('#rating');
  const show = current && answered(current);
  form.hidden = !show;
  if (!show) return;
  for (const input of form.querySelectorAll('input[type=radio]')) {
    const value = current[input.name];
    input.checked = value !== null && value !== undefined && String(value) === input.value;
  }
  const btp = $('#better-than-previous');
  if (btp) btp.hidden = current.index === 0;
}

function renderAsk() {
  const ready = !streaming && (!current || (answered(current) && missingRatings(current).length === 0));
  queryInput.disabled = !ready;
  askButton.disabled = !ready;
  if (current && answered(current) && missingRatings(current).length) say(config.text.pleaseRate);
}

function renderHistory() {
  const list = $('#history-list');
  list.replaceChildren();
  for (const t of turns.slice(0, -1)) {
    const div = document.createElement('div');
    div.className = 'past-turn';
    const q = document.createElement('p');
    q.textContent = `${config.text.question}: ${t.query}`;
    div.append(q);
    $('#history').hidden = false;
    list.append(div);
  }
}

function render() {
  $('#current-query').textContent = current ? current.query : '';
  for (const s of sides) {
    const text = current ? current[`response_${s}`] : '';
    if (!streaming) setBox(s, text || (current ? '' : config.text.noQuestion), { empty: !text });
    $(`#error-${s}`).hidden = !(current && current[`error_${s}`] && !current[`response_${s}`]);
  }
  renderRatings();
  renderAsk();
  renderProgress();
  renderHistory();
}

async function streamAnswers(turn) {
  streaming = true;
  render();
  for (const s of sides) {
    if (!turn[`response_${s}`]) { setBox(s, config.text.waiting, { empty: true }); boxes[s].dataset.streaming = '1'; }
    $(`#error-${s}`).hidden = true;
  }
  say(config.text.answering);
  try {
    const response = await fetch(url(config.urls.answer, turn.id), {
      method: 'POST', credentials: 'same-origin', headers: { 'X-CSRFToken': config.csrfToken },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const dataLine = raw.split('\n').find((l) => l.startsWith('data: '));
        if (dataLine) handleEvent(turn, JSON.parse(dataLine.slice(6)));
      }
    }
  } catch (e) {
    for (const s of sides) if (!turn[`response_${s}`]) turn[`error_${s}`] = String(e.message || e);
  }
  streaming = false;
  for (const s of sides) delete boxes[s].dataset.streaming;
  say(answered(turn) ? config.text.pleaseRate : config.text.failed, !answered(turn));
  render();
  if (answered(turn)) window.ifllmLogger?.flush();
}

function handleEvent(turn, ev) {
  if (ev.event === 'delta') {
    const box = boxes[ev.side];
    if (box.classList.contains('empty')) setBox(ev.side, '');
    box.textContent += ev.text;
  } else if (ev.event === 'done') {
    turn[`response_${ev.side}`] = ev.text;
    turn[`error_${ev.side}`] = '';
    setBox(ev.side, ev.text); // the stored text replaces what was streamed
  } else if (ev.event === 'error') {
    turn[`error_${ev.side}`] = ev.message;
    setBox(ev.side, '', { empty: true });
    $(`#error-${ev.side}`).hidden = false;
  }
}

async function ask(event) {
  event.preventDefault();
  const query = queryInput.value.trim();
  if (!query) { say(config.text.typeQuestion, true); return; }
  askButton.disabled = true;
  $('#rating').hidden = true; // the previous answer's rating is closed from now on
  await answers.settled(); // the server needs the previous ratings before the next question
  window.ifllmLogger?.flush(); // end of the previous turn
  try {
    const turn = await postJSON(config.urls.turns, { query });
    current = { ...turn, response_1: '', response_2: '', error_1: '', error_2: '', likert_1: null, likert_2: null,
      preferred: null, better_than_previous: null };
    turns.push(current);
    queryInput.value = '';
    await streamAnswers(current);
  } catch (e) {
    say(e.message, true);
    render();
  }
}

function rate(event) {
  const input = event.target;
  if (!current || input.type !== 'radio') return;
  const turn = current;
  const value = input.name === 'better_than_previous' ? input.value === 'true' : Number(input.value);
  turn[input.name] = value; // the page's state follows the worker at once; the server confirms
  renderAsk();
  // Queued, in order, kept across reloads and network cuts until the server acknowledges it.
  // The boxes' layout goes along (for the replay): the answer is on screen as the worker rates it.
  const layout = Object.fromEntries(sides.map((s) => [`box_${s}`, boxLayout(boxes[s])]));
  answers.push(url(config.urls.rate, turn.id), { [input.name]: value, ...layout },
    { turnId: turn.id, field: input.name });
}

function onAnswerSaved(item, data) {
  const turn = turns.find((t) => t.id === item.meta.turnId);
  if (turn && data.turn) turn.rated_at = data.turn.rated_at;
  if (data.progress) progress = data.progress;
  if (turn === current) say(data.complete ? config.text.rated : config.text.pleaseRate);
  if (data.complete) window.ifllmLogger?.flush();
  render();
}

function onAnswerRejected(item, message) {
  // Refused by the server (not a network problem): the choice is undone and the reason shown.
  const turn = turns.find((t) => t.id === item.meta.turnId);
  if (turn) turn[item.meta.field] = null;
  say(message, true);
  render();
}

const saveState = $('#save-state');
let answeredOnPage = false; // "Saved" only once this page has saved something, not for an empty queue
const answers = new AnswerQueue({
  taskId: config.taskId, csrfToken: config.csrfToken, onSaved: onAnswerSaved, onRejected: onAnswerRejected,
  onState: (state) => {
    if (state !== 'saved') answeredOnPage = true;
    if (!answeredOnPage) return;
    saveState.hidden = false;
    saveState.dataset.state = state;
    saveState.textContent = config.text[{ saving: 'saving', saved: 'saved', retrying: 'savingRetry' }[state]];
  },
});
// Answers given before a reload and not yet acknowledged: the page shows them, and sends them.
for (const item of answers.pending()) {
  const turn = turns.find((t) => t.id === item.meta.turnId);
  if (turn) Object.assign(turn, item.body);
}

async function finish() {
  finishButton.disabled = true;
  try {
    await answers.settled();
    // The samples logged so far reach the server before the chat ends: it measures the task's
    // achieved sampling rates from what it stores when the chat ends (the rest follow at once).
    await window.ifllmLogger?.flush();
    const data = await postJSON(config.urls.finish);
    say(config.text.saving);
    await window.ifllmLogger?.finish();
    location.href = data.next_url;
  } catch (e) {
    say(e.message, true);
    renderProgress();
  }
}

$('#ask-form').addEventListener('submit', ask);
$('#rating').addEventListener('change', rate);
finishButton.addEventListener('click', finish);
for (const s of sides) {
  $(`#retry-${s}`).addEventListener('click', () => { if (current) streamAnswers(current); });
}
setInterval(() => { progress.seconds_left = Math.max(0, progress.seconds_left - 1); renderProgress(); }, 1000);

// Read-only view of the page state, for support and browser tests.
window.ifllmChat = { get current() { return current; }, get streaming() { return streaming; } };
render();
answers.flush();

const gaze = await startGaze({ webgazerSrc: config.webgazerSrc, faceMeshPath: config.faceMeshPath });
gaze.setLearning(config.webgazerLearn);
gaze.showPreview(false); // the preview would cover the page's heading; tracking goes on
gaze.showDot(false);
startLogger({
  taskId: config.taskId, url: config.urls.batches, csrfToken: config.csrfToken, csrfParam: config.csrfParam,
  intervalMs: config.sampleIntervalMs, batchIntervalMs: config.batchIntervalMs, gaze,
  // A placeholder ("waiting...") is not answer text: no character index points into it.
  boxes: () => sides.map((s) => ({ frame: `box${s}`, el: boxes[s],
    text: boxes[s].classList.contains('empty') ? '' : null })),
  turnId: () => (current ? current.id : null),
  onStatus: (state) => {
    document.body.dataset.logger = state;
    // Batches refused (session ended, or the task continues in another window): the samples stay
    // queued in this browser, and a reload shows the server's page that says why.
    if (state === 'forbidden') window.location.reload();
  },
});
if (current && !answered(current) && !streaming) streamAnswers(current);
