// Ends the session after the staff-set idle time without any input: the page flushes what it
// logged (if a logger is running) and shows the clear "session ended" page.
'use strict';
{
  const body = document.body;
  const timeoutMs = Number(body.dataset.idleTimeoutS || 1800) * 1000;
  const endedUrl = body.dataset.sessionEndedUrl;
  let last = Date.now();
  const touch = () => { last = Date.now(); };
  for (const ev of ['mousemove', 'mousedown', 'keydown', 'wheel', 'touchstart', 'scroll']) {
    window.addEventListener(ev, touch, { passive: true, capture: true });
  }
  if (endedUrl && !location.pathname.startsWith(new URL(endedUrl, location.href).pathname)) {
    setInterval(async () => {
      if (Date.now() - last < timeoutMs) return;
      last = Date.now();
      if (window.ifllmLogger) {
        try { await window.ifllmLogger.finish(); } catch (e) { /* data stays queued */ }
      }
      location.href = endedUrl;
    }, 5000);
  }
}
