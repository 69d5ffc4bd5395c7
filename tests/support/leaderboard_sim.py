"""Simulated pairwise votes with planted model strengths (leaderboard tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_turns(
    strengths: dict[str, float], *, n_workers: int = 40, per_worker: int = 30, worker_sd: float = 0.0,
    length_effect: float = 0.0, long_model: str | None = None, seed: int = 0,
) -> pd.DataFrame:
    """Pairwise turns voted by simulated workers: P(1 wins) = σ(β_1 − β_2 + worker taste + length).

    ``worker_sd`` gives each worker their own taste for each model (votes of one worker are
    then correlated); ``long_model`` writes three times longer answers and ``length_effect``
    (logits per normalised length difference) is how much voters like length for its own sake.
    """
    rng = np.random.default_rng(seed)
    models = list(strengths)
    beta = np.array([strengths[m] for m in models])
    rows = []
    for w in range(n_workers):
        taste = rng.normal(0.0, worker_sd, len(models))
        for _ in range(per_worker):
            i, j = rng.choice(len(models), 2, replace=False)
            n_i = int(rng.integers(40, 80) * (3 if models[i] == long_model else 1))
            n_j = int(rng.integers(40, 80) * (3 if models[j] == long_model else 1))
            logit = beta[i] + taste[i] - beta[j] - taste[j] + length_effect * (n_i - n_j) / (n_i + n_j)
            rows.append({
                "query_id": len(rows), "worker": f"w{w}", "model_1": models[i], "model_2": models[j],
                "preferred": 1 if rng.random() < 1 / (1 + np.exp(-logit)) else 2,
                "response_1": "word " * n_i, "response_2": "word " * n_j,
                "bullet_instruction": bool(rng.random() < 0.5), "error_1": "", "error_2": "",
            })
    return pd.DataFrame(rows)


def store_simulated_votes(strengths: dict[str, float], *, n_workers: int = 12, per_worker: int = 25, seed: int = 4):
    """Write simulated pairwise turns to the database (one task per worker); returns the Turns."""
    from collection.models import Platform, Task, Topic, Turn, Worker

    sim = simulate_turns(strengths, n_workers=n_workers, per_worker=per_worker, seed=seed)
    topic = Topic.objects.create(title="Leaderboards")
    turns = []
    for worker_name, rows in sim.groupby("worker"):
        worker = Worker.objects.create(pseudonym=worker_name, platform=Platform.MTURK)
        task = Task.objects.create(worker=worker, topic=topic, mode="pairwise")
        for i, r in enumerate(rows.itertuples(index=False)):
            turns.append(Turn(
                task=task, index=i, query=f"q{r.query_id}", model_1=r.model_1, model_2=r.model_2,
                response_1=r.response_1, response_2=r.response_2, preferred=r.preferred,
                bullet_instruction=r.bullet_instruction,
            ))
    return Turn.objects.bulk_create(turns)
