"""Ingest benchmark: simulated workers posting gaze/mouse batches to the real server.

Starts uvicorn (the production ASGI server) against a fresh PostgreSQL database, creates one
worker, session and task per simulated worker, then lets every worker post a batch on a fixed
schedule (default: every 5 s, 300 samples = a pairwise page at 100 ms) over loopback, like the
browsers would, re-sending a share of batches to exercise idempotency. Prints samples stored per
second, p50/p99 batch latency and lost/duplicated counts. Not a test: run it by hand::

    .venv/bin/python benchmarks/ingest.py --workers 400 --seconds 60

Needs PostgreSQL (``--database-url``, default ``postgres://postgres@127.0.0.1:5432/ifllm_ingest_bench?pool=true``,
dropped and re-created) and ``psycopg-pool``. Target: >= 24,000 samples/s (400 browsers) with
p99 < 250 ms, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collection.release.schema import BROWSER_COLUMNS  # noqa: E402 (after the path set-up)


def _columns(n_ticks: int, t0: int, turn_id: int | None) -> dict[str, list]:
    """One pairwise batch: per tick, gaze and mouse in abs, box1 and box2 frames (6 rows)."""
    cols: dict[str, list] = {k: [] for k in BROWSER_COLUMNS}
    rnd = random.Random(t0)
    for k in range(n_ticks):
        no_face = rnd.random() < 0.05
        for signal in ("gaze", "mouse"):
            for frame in ("abs", "box1", "box2"):
                box = frame != "abs"
                inside = box and rnd.random() < 0.5 and not (no_face and signal == "gaze")
                x = None if (no_face and signal == "gaze") else round(rnd.uniform(0, 1400), 2)
                row = {
                    "signal": signal, "frame": frame,
                    "x": (round(rnd.uniform(0, 600), 2) if inside else (-1.0 if box else x)) if x is not None else None,
                    "y": (round(rnd.uniform(0, 900), 2) if inside else (-1.0 if box else x)) if x is not None else None,
                    "snippet": "ipsum dolor sit amet, consect" if inside else None,
                    "char_index": rnd.randrange(0, 2000) if inside else None,
                    "page_timer_ms": 1000.0 + 100 * k, "head_in_box": None if no_face else True,
                    "epoch_ms": t0 + 100 * k, "turn_id": turn_id, "viewport_w": 1400, "viewport_h": 900,
                    "box_left": (40.0 if frame == "box1" else 720.0) if box else None,
                    "box_top": 300.0 if box else None, "box_width": 640.0 if box else None,
                    "box_height": 420.0 if box else None, "scroll_left": 0.0, "scroll_top": 0.0, "no_face": no_face,
                }
                for name in BROWSER_COLUMNS:  # a column the schema adds later is sent as null
                    cols[name].append(row.get(name))
    return cols


#: Production-like settings of the server under test (and of this process, which writes sessions).
SERVER_ENV = {"DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 44, "ALLOWED_HOSTS": "localhost,127.0.0.1",
              "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "0",
              # Plain HTTP on loopback stands for the TLS proxy in front: no redirect to https.
              "SECURE_SSL_REDIRECT": "false"}


def _setup_database(url: str, n_workers: int) -> list[dict]:
    """Fresh database, migrations, and one (worker, session, task, turn) per simulated worker."""
    base, _, query = url.partition("?")
    name = base.rsplit("/", 1)[1]
    admin = base.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env={**env, "DATABASE_URL": base}, check=True)
    os.environ.update(SERVER_ENV, DATABASE_URL=url)  # same keys as the server: sessions must decode there
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore

    from collection import session as study_session
    from collection.models import Task, Topic, Turn, Worker

    topic = Topic.objects.create(title="Benchmark topic")
    out = []
    for i in range(n_workers):
        w = Worker.objects.create(pseudonym=f"bench{i}", platform="lab", platform_worker_id=f"bench-{i}")
        task = Task.objects.create(worker=w, topic=topic, mode="pairwise", model_1="a", model_2="b",
                                   status=Task.Status.CHATTING)
        turn = Turn.objects.create(task=task, index=0, query="q")
        s = SessionStore()
        s[study_session.WORKER_KEY] = w.pk
        s[study_session.SEEN_KEY] = int(time.time())
        s.create()
        out.append({"task": task.pk, "turn": turn.pk, "session": s.session_key, "csrf": secrets.token_hex(16)})
    return out


async def _worker(client, info: dict, args, results: dict, t_end: float) -> None:
    import httpx

    url = f"{args.base}/api/study/tasks/{info['task']}/batches/"
    headers = {"X-CSRFToken": info["csrf"], "Content-Type": "application/json",
               "Cookie": f"sessionid={info['session']}; csrftoken={info['csrf']}"}
    rnd = random.Random(info["task"])
    templates = info["templates"]
    await asyncio.sleep(rnd.uniform(0, args.interval))  # spread the workers over the interval
    seq = info.get("seq", 0)  # steps go on where the previous one stopped
    next_at = time.monotonic()
    while time.monotonic() < t_end:
        body = f'{{"seq": {seq}, "idempotency_key": "{info["task"]}:{seq}", "columns": {templates[seq % 3]}}}'
        sends = 2 if rnd.random() < args.resend else 1  # a share is re-sent, as after a lost ack
        for _ in range(sends):
            while time.monotonic() < t_end + 30:
                start = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    results["errors"] += 1
                    await asyncio.sleep(0.5)
                    continue
                results["latency"].append(time.perf_counter() - start)
                if r.status_code in (200, 201):
                    results["created" if r.status_code == 201 else "acked_again"] += 1
                    break
                results["errors"] += 1
                if r.status_code < 500 and r.status_code != 503:
                    raise RuntimeError(f"unexpected {r.status_code}: {r.text[:300]}")
                await asyncio.sleep(0.5)
        results["sent_samples"] += args.ticks * 6
        seq += 1
        info["seq"] = seq
        next_at += args.interval
        # Never sleep past the end of the step: that idle tail would count in the wall time and
        # understate the throughput by up to one interval.
        await asyncio.sleep(max(0.0, min(next_at, t_end) - time.monotonic()))


async def _run(args, infos: list[dict], seconds: float) -> dict:
    import httpx

    results = {"latency": [], "created": 0, "acked_again": 0, "errors": 0, "sent_samples": 0}
    limits = httpx.Limits(max_connections=len(infos) + 10, max_keepalive_connections=len(infos) + 10)
    # Bodies are built before the clock starts: the client shares the two cores with the server.
    t0 = int(time.time() * 1000)
    for info in infos:
        if "templates" not in info:
            info["templates"] = [json.dumps(_columns(args.ticks, t0 + k * args.ticks * 100, info["turn"]))
                                 for k in range(3)]
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        t_start = time.monotonic()
        t_end = t_start + seconds
        await asyncio.gather(*(_worker(client, info, args, results, t_end) for info in infos))
        results["wall_s"] = time.monotonic() - t_start
    return results


async def _warm(args, infos: list[dict]) -> None:
    """One batch per browser, unmeasured, a few at a time: what a server that has been up for a
    minute has behind it (each process's connection pool filled, lazy imports done, every task
    held by its session, which a real page does on load rather than with its first batch)."""
    import httpx

    sem = asyncio.Semaphore(8)
    t0 = int(time.time() * 1000)
    body = json.dumps(_columns(1, t0, None))

    async def one(client: httpx.AsyncClient, info: dict) -> None:
        seq = info.get("seq", 0)
        async with sem:
            r = await client.post(
                f"{args.base}/api/study/tasks/{info['task']}/batches/",
                content=f'{{"seq": {seq}, "columns": {body}}}',
                headers={"X-CSRFToken": info["csrf"], "Content-Type": "application/json",
                         "Cookie": f"sessionid={info['session']}; csrftoken={info['csrf']}"})
        if r.status_code != 201:
            raise RuntimeError(f"warm-up: unexpected {r.status_code}: {r.text[:300]}")
        info["seq"] = seq + 1

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(one(client, info) for info in infos))


def _stored() -> tuple[int, int]:
    from django.db.models import Count, Sum

    from collection.models import TrajectoryChunk

    agg = TrajectoryChunk.objects.aggregate(n=Sum("n_samples"), c=Count("id"))
    return agg["n"] or 0, agg["c"]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server: uvicorn and its worker processes."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _step(args, infos: list[dict], seconds: float) -> dict:
    """Run ``len(infos)`` browsers for ``seconds``; what the server stored meanwhile, and how fast."""
    n0, c0 = _stored()
    cpu0 = _cpu_s(args.server_pid)
    results = asyncio.run(_run(args, infos, seconds))
    cpu1 = _cpu_s(args.server_pid)
    n1, c1 = _stored()
    lat = sorted(results["latency"]) or [float("nan")]
    return {
        "browsers": len(infos),
        "offered": len(infos) * args.ticks * 6 / args.interval,
        "stored_per_s": (n1 - n0) / results["wall_s"],
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
        "requests": len(results["latency"]),
        "errors": results["errors"],
        "lost": results["sent_samples"] - (n1 - n0),
        "duplicated": (c1 - c0) - results["created"],
        # What a batch costs the web server in CPU, whatever else runs on the machine (the
        # latencies depend on that; PostgreSQL's own CPU is not included).
        "cpu_ms_per_request": (cpu1 - cpu0) * 1000 / max(1, len(results["latency"])),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # ?pool=true: Django's psycopg connection pool (dj-database-url passes it to OPTIONS). Under
    # ASGI every request runs in a thread of its own, so without a pool each one opens a new
    # PostgreSQL connection, and a burst opens more than the server allows.
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ifllm_ingest_bench?pool=true")
    p.add_argument("--steps", default="200,300,400,500,600,800",
                   help="simulated browsers per step, comma separated, increasing")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between a browser's batches")
    p.add_argument("--ticks", type=int, default=50, help="clock ticks per batch (6 samples each)")
    p.add_argument("--seconds", type=float, default=30.0, help="duration of each step (s), warm-up included")
    p.add_argument("--p99-ms", type=float, default=250.0, help="a step holds while p99 stays under this")
    p.add_argument("--resend", type=float, default=0.05, help="share of batches sent twice")
    p.add_argument("--server-workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()
    args.base = f"http://localhost:{args.port}"
    steps = [int(n) for n in args.steps.split(",")]

    infos = _setup_database(args.database_url, max(steps))
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": args.database_url}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "ifllm_site.asgi:application", "--host", "127.0.0.1", "--port",
         str(args.port), "--workers", str(args.server_workers), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    args.server_pid = server.pid
    print(f"batches of {args.ticks * 6} samples every {args.interval:g} s per browser, {args.resend:.0%} re-sent; "
          f"uvicorn --workers {args.server_workers}, PostgreSQL, loopback; {args.seconds:g} s per step")
    print(f"{'browsers':>8} {'offered/s':>10} {'stored/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'requests':>8} {'errors':>6} {'lost':>6} {'dup':>4} {'cpu ms/req':>10}  held")
    held = None
    try:
        import httpx

        for _ in range(200):
            try:
                httpx.get(f"{args.base}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(_warm(args, infos))
        for n in steps:
            r = _step(args, infos[:n], args.seconds)
            ok = r["p99_ms"] < args.p99_ms and r["errors"] == 0 and r["lost"] == 0 and r["duplicated"] == 0
            print(f"{r['browsers']:>8} {r['offered']:>10,.0f} {r['stored_per_s']:>10,.0f} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f} {r['requests']:>8} {r['errors']:>6} {r['lost']:>6} {r['duplicated']:>4} "
                  f"{r['cpu_ms_per_request']:>10.1f}  "
                  f"{'yes' if ok else 'NO'}", flush=True)
            if not ok:
                break
            held = r
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    if held is None:
        print("capacity: no step held (p99 under the limit, no errors, nothing lost or duplicated)")
    else:
        print(f"capacity: {held['stored_per_s']:,.0f} samples/s stored ({held['browsers']} browsers), "
              f"p50 {held['p50_ms']:.1f} ms, p99 {held['p99_ms']:.1f} ms, lost {held['lost']}, "
              f"duplicated {held['duplicated']}")


if __name__ == "__main__":
    main()
