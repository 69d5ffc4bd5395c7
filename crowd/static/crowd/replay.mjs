// Trajectory replay of one turn: the response text as stored, gaze and mouse dots moving along a
// time slider, and a per-character dwell heatmap. Data arrive through json_script ("replay-data").
'use strict';

const data = JSON.parse(document.getElementById('replay-data').textContent);
const SIGNALS = ['gaze', 'mouse'];
const slider = document.getElementById('replay-slider');
const clock = document.getElementById('replay-clock');
const heatSelect = document.getElementById('replay-heat');
const root = document.getElementById('replay-boxes');

// Index of the last sample at or before time t (samples sorted by time), or -1.
export function lastBefore(times, t) {
  let lo = 0, hi = times.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] !== null && times[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
  }
  return found;
}

const LAYOUT_NOTE = {
  recorded: 'drawn at the size and font the chat page recorded',
  samples: 'size from the logged samples; font of the chat page (not recorded for this turn)',
  estimated: 'size and font not recorded in the release: the chat page\'s font, width estimated from the samples',
};

// Draw the content box as the worker's box was: border-box width, padding, border and font, and
// the scrollbar's width (width - borders - client width) added to the right padding, so the text
// wraps at the same place and the logged coordinates (from the box's top-left) fall on the same
// characters. The box is at least as tall as the worker's (a point in its blank lower part stays
// inside it) and grows with the text: coordinates include the box's scroll offset.
export function applyLayout(content, layout) {
  const [bt, br, bb, bl] = layout.border;
  const [pt, pr, pb, pl] = layout.padding;
  const scrollbar = layout.client_width ? Math.max(0, layout.width - bl - br - layout.client_width) : 0;
  Object.assign(content.style, {
    boxSizing: 'border-box', width: `${layout.width}px`, minHeight: layout.height ? `${layout.height}px` : '',
    fontFamily: layout.font_family,
    fontSize: `${layout.font_size_px}px`, lineHeight: layout.line_height_px ? `${layout.line_height_px}px` : 'normal',
    padding: `${pt}px ${pr + scrollbar}px ${pb}px ${pl}px`, borderStyle: 'solid', borderColor: '#888',
    borderWidth: `${bt}px ${br}px ${bb}px ${bl}px`,
  });
}

const views = data.boxes.map((box) => {
  const el = document.createElement('div');
  el.className = 'replay-box';
  const title = document.createElement('h3');
  title.textContent = `${data.pairwise ? (box.n === 1 ? 'Response 1 (left)' : 'Response 2 (right)') : 'Response'} — ${box.model || ''}`;
  const note = document.createElement('p');
  note.className = 'layout-note';
  const other = box.layout.other_width_samples
    ? ` (${box.layout.other_width_samples} samples were logged while the box had another width: they fall elsewhere)` : '';
  note.textContent = `${Math.round(box.layout.width)} px, ${box.layout.font_size_px} px ${box.layout.font_family}: ${LAYOUT_NOTE[box.layout.source]}${other}`;
  const content = document.createElement('div');
  content.className = 'content';
  content.dataset.layout = box.layout.source;
  applyLayout(content, box.layout);
  const spans = Array.from(box.text, (ch) => {
    const s = document.createElement('span');
    s.textContent = ch;
    content.appendChild(s);
    return s;
  });
  const dots = {};
  for (const signal of SIGNALS) {
    const d = document.createElement('span');
    d.className = `dot ${signal}`;
    d.hidden = true;
    content.appendChild(d);
    dots[signal] = d;
  }
  el.append(title, note, content);
  root.appendChild(el);
  return { box, spans, dots, current: {}, border: box.layout.border };
});

function paintHeat(kind) {
  for (const v of views) {
    const dwell = kind === 'none' ? null : v.box[`${kind}_dwell`];
    const max = dwell ? Math.max(1, ...dwell) : 1;
    const rgb = kind === 'mouse' ? '31,119,180' : '214,39,40';
    v.spans.forEach((s, i) => {
      s.style.backgroundColor = dwell && dwell[i] ? `rgba(${rgb},${(0.08 + 0.75 * dwell[i] / max).toFixed(3)})` : '';
      s.title = dwell ? `${dwell[i]} ms` : '';
    });
  }
}

function show(t) {
  clock.textContent = `${(t / 1000).toFixed(1)} s / ${(data.duration / 1000).toFixed(1)} s`;
  for (const v of views) {
    for (const signal of SIGNALS) {
      const series = v.box[signal];
      const i = lastBefore(series.t, t);
      const dot = v.dots[signal];
      const prev = v.current[signal];
      if (prev !== undefined) prev.classList.remove(`cur-${signal}`);
      v.current[signal] = undefined;
      if (i < 0 || series.x[i] === null) { dot.hidden = true; continue; }
      dot.hidden = false;
      // Logged from the border's outer edge; absolute positions start inside the border.
      dot.style.left = `${series.x[i] - v.border[3]}px`;
      dot.style.top = `${series.y[i] - v.border[0]}px`;
      const c = series.c[i];
      if (c !== null && v.spans[c]) {
        v.spans[c].classList.add(`cur-${signal}`);
        v.current[signal] = v.spans[c];
      }
    }
  }
}

slider.addEventListener('input', () => show((slider.value / 1000) * data.duration));
heatSelect.addEventListener('change', () => paintHeat(heatSelect.value));

let playing = null;
document.getElementById('replay-play').addEventListener('click', (ev) => {
  if (playing) { cancelAnimationFrame(playing); playing = null; ev.target.textContent = '▶ play'; return; }
  ev.target.textContent = '❚❚ pause';
  let last = performance.now();
  const step = (now) => {
    const t = Math.min(data.duration, (slider.value / 1000) * data.duration + (now - last) * 4);
    last = now;
    slider.value = data.duration ? Math.round((t / data.duration) * 1000) : 0;
    show(t);
    if (t < data.duration) playing = requestAnimationFrame(step);
    else { playing = null; ev.target.textContent = '▶ play'; }
  };
  playing = requestAnimationFrame(step);
});

paintHeat(heatSelect.value);
show(0);
