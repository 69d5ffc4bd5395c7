"""Human evaluation of SFT vs DPO answers on MTurk (paper appendix A.2 / C.1), blinded.

Workflow:
1. :func:`export_human_batch` puts the two answers of each query in a seeded random order
   (answer A / answer B) and keeps the hidden mapping in a separate key table.
2. :func:`write_mturk_csv` and :func:`write_mturk_template` give the batch CSV and a
   crowd-html template using ``${query}``, ``${answer_a}``, ``${answer_b}``.
3. :func:`import_human_results` reads MTurk's results CSV and un-blinds it with the key.
4. :func:`compare_with_judge` reports Spearman correlations judge-vs-worker and
   worker-vs-worker (inter-annotator agreement), as in Table 4.

Questions follow the paper's dimensions: factual, informativeness, relevancy, overall
(1-5 per answer) and a comparison (A better / same / B better).
"""

from __future__ import annotations

import html
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "DIMENSIONS",
    "export_human_batch",
    "write_mturk_csv",
    "write_mturk_template",
    "MTURK_TEMPLATE",
    "import_human_results",
    "compare_with_judge",
]

DIMENSIONS = ["factual", "informativeness", "relevancy", "overall"]
QUESTIONS = {
    "factual": "Is the answer factually correct? Search the web to check claims. (1 = many errors, 5 = no errors)",
    "informativeness": "How informative is the answer? (1 = nothing useful, 5 = very informative)",
    "relevancy": "How relevant is the answer to the query? (1 = off-topic, 5 = fully on-topic)",
    "overall": "Overall quality of the answer (1 = very poor, 5 = excellent)",
}


def export_human_batch(comparisons: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blind a set of comparisons.

    ``comparisons`` has ``query``, ``dpo_answer``, ``sft_answer`` and optionally ``query_id``
    and ``base_model``.  Returns ``(batch, key)``: ``batch`` has ``item_id, query, answer_a,
    answer_b`` (what workers see); ``key`` has ``item_id, a_system, b_system`` plus the ids
    (kept by the researcher only).
    """
    rng = random.Random(seed)
    batch_rows, key_rows = [], []
    for i, r in enumerate(comparisons.to_dict(orient="records")):
        item_id = f"item-{i:04d}"
        dpo_first = rng.random() < 0.5
        a, b = ("dpo", "sft") if dpo_first else ("sft", "dpo")
        batch_rows.append(
            {"item_id": item_id, "query": r["query"], "answer_a": r[f"{a}_answer"], "answer_b": r[f"{b}_answer"]}
        )
        key = {"item_id": item_id, "a_system": a, "b_system": b}
        for extra in ("query_id", "base_model", "query"):
            if extra in r:
                key[extra] = r[extra]
        key_rows.append(key)
    return pd.DataFrame(batch_rows), pd.DataFrame(key_rows)


def _as_html(text: Any) -> str:
    # MTurk substitutes ${var} into the HTML verbatim, so escape model text and keep newlines.
    return html.escape(str(text)).replace("\n", "<br>")


def write_mturk_csv(batch: pd.DataFrame, path: str | Path, *, escape_html: bool = True) -> Path:
    """Write the MTurk input CSV (header = template variables)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = batch[["item_id", "query", "answer_a", "answer_b"]].copy()
    if escape_html:
        for col in ("query", "answer_a", "answer_b"):
            out[col] = out[col].map(_as_html)
    out.to_csv(path, index=False)
    return path


def _radio(name: str, labels: list[tuple[str, str]]) -> str:
    return "\n".join(
        f'      <label><input type="radio" name="{name}" value="{v}" required> {text}</label>' for v, text in labels
    )


def _build_template() -> str:
    scale = [(str(i), str(i)) for i in range(1, 6)]
    blocks = []
    for dim in DIMENSIONS:
        for side in ("a", "b"):
            blocks.append(
                f'    <p><b>Answer {side.upper()}</b> &ndash; {html.escape(QUESTIONS[dim])}</p>\n'
                f"{_radio(f'{dim}_{side}', scale)}"
            )
    choices = [("A", "Answer A is better"), ("same", "About the same"), ("B", "Answer B is better")]
    comparison = _radio("comparison", choices)
    questions = "\n".join(blocks)
    return f"""<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form answer-format="flatten-objects">
  <input type="hidden" name="item_id" value="${{item_id}}">
  <h3>Compare two answers to a user's query</h3>
  <p>The query may be a follow-up question whose earlier context is missing; let the answers
  interpret it in any reasonable way. Please search the Internet to check facts.</p>
  <div style="border:1px solid #ccc;padding:8px"><b>Query</b><br>${{query}}</div>
  <div style="display:flex;gap:12px">
    <div style="flex:1;border:1px solid #ccc;padding:8px"><b>Answer A</b><br>${{answer_a}}</div>
    <div style="flex:1;border:1px solid #ccc;padding:8px"><b>Answer B</b><br>${{answer_b}}</div>
  </div>
  <fieldset>
{questions}
    <p><b>Comparison</b> &ndash; Which answer is better overall?</p>
{comparison}
  </fieldset>
</crowd-form>
"""


MTURK_TEMPLATE = _build_template()


def write_mturk_template(path: str | Path) -> Path:
    """Write the crowd-html template (variables ``${item_id}``, ``${query}``, ``${answer_a}``, ``${answer_b}``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MTURK_TEMPLATE, encoding="utf-8")
    return path


def _answers_of(row: pd.Series) -> dict[str, Any]:
    """Answer fields of one results row: ``Answer.<name>`` columns or a ``taskAnswers`` JSON."""
    answers: dict[str, Any] = {}
    for col, value in row.items():
        if str(col).startswith("Answer.") and col != "Answer.taskAnswers":
            answers[str(col)[len("Answer."):]] = value
    raw = row.get("Answer.taskAnswers")
    if isinstance(raw, str) and raw.strip():
        parsed = json.loads(raw)
        for obj in parsed if isinstance(parsed, list) else [parsed]:
            for name, value in obj.items():
                if isinstance(value, dict):  # crowd radio groups: {"4": true, "5": false}
                    value = next((k for k, on in value.items() if on), None)
                answers[name] = value
    return answers


def import_human_results(results: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """Un-blind an MTurk results table into long form.

    Returns one row per (item, worker, system, dimension) with ``score`` (1-5) for the
    per-answer dimensions, and for ``dimension == "comparison"`` a score of 1 (this system
    judged better), 0.5 (same) or 0 (worse), so comparisons average into win shares.
    """
    key_by_item = key.set_index("item_id")
    rows = []
    for _, r in results.iterrows():
        answers = _answers_of(r)
        item_id = r.get("Input.item_id", answers.get("item_id"))
        k = key_by_item.loc[item_id]
        worker = r.get("WorkerId", "unknown")
        systems = {"a": k["a_system"], "b": k["b_system"]}
        base = {"item_id": item_id, "worker_id": worker}
        for extra in ("query_id", "base_model"):
            if extra in k.index:
                base[extra] = k[extra]
        for dim in DIMENSIONS:
            for side in ("a", "b"):
                value = answers.get(f"{dim}_{side}")
                if value is None or (isinstance(value, float) and pd.isna(value)):
                    continue
                rows.append({**base, "system": systems[side], "dimension": dim, "score": float(value)})
        choice = answers.get("comparison")
        if isinstance(choice, str) and choice in ("A", "B", "same"):
            for side in ("a", "b"):
                score = 0.5 if choice == "same" else float(choice.lower() == side)
                rows.append({**base, "system": systems[side], "dimension": "comparison", "score": score})
    return pd.DataFrame(rows)


def compare_with_judge(human: pd.DataFrame, judged: pd.DataFrame, *, dimension: str = "overall") -> dict[str, float]:
    """Spearman correlations for one dimension (Table 4 style).

    ``judged`` has ``item_id`` plus ``score_dpo``/``score_sft`` of the LLM judge.  Returns
    ``human_vs_judge`` (each worker's scores vs the judge's, all (item, system) pairs pooled)
    and ``human_vs_human`` (first two workers per item against each other).
    """
    h = human[human["dimension"] == dimension]
    judge_long = pd.concat(
        [
            judged[["item_id", "score_dpo"]].rename(columns={"score_dpo": "judge"}).assign(system="dpo"),
            judged[["item_id", "score_sft"]].rename(columns={"score_sft": "judge"}).assign(system="sft"),
        ]
    )
    merged = h.merge(judge_long, on=["item_id", "system"])
    hvj = merged["score"].corr(merged["judge"], method="spearman") if len(merged) > 2 else float("nan")
    h = h.sort_values(["item_id", "system", "worker_id"]).copy()
    h["rank"] = h.groupby(["item_id", "system"]).cumcount()
    wide = h.pivot_table(index=["item_id", "system"], columns="rank", values="score")
    hvh = float("nan")
    if 0 in wide.columns and 1 in wide.columns:
        pair = wide[[0, 1]].dropna()
        if len(pair) > 2:
            hvh = pair[0].corr(pair[1], method="spearman")
    return {"human_vs_judge": float(hvj), "human_vs_human": float(hvh), "n": int(len(merged))}
