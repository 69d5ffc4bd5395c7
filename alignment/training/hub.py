"""The one Hugging Face export of preference records: a Hub-style folder with a dataset card.

Both exports of the lab write through :func:`write_preference_dataset`: a preference dataset of
the alignment app (``alignment.services.preference_dataset_export``, train/valid/test) and the
cleaned crowd dataset (``crowd.services.export``, one train split of explicit labels). So the same
pair has the same record (``pair_id`` is the turn's public query id) and the same card layout
wherever it comes from. ``datasets.load_dataset(folder)`` reads the folder; the columns are the
ones TRL's ``DPOTrainer`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .preference import write_jsonl, write_parquet

#: Our split names -> the names `datasets` and the Hub use.
HF_SPLITS = {"train": "train", "valid": "validation", "test": "test"}

CARD = """---
license: apache-2.0
language:
- en
task_categories:
- text-generation
tags:
- dpo
- preference
- implicit-feedback
- ifllm
pretty_name: {title}
configs:
- config_name: default
  data_files:
{data_files}
---

# {title}

{about}

Columns (`prompt`/`chosen`/`rejected`/`confidence`, as TRL's `DPOTrainer` reads them):

- `prompt`: the worker's query as typed (without any formatting instruction sent to the models).
- `chosen` / `rejected`: the preferred / the other answer.
- `pair_id`: the turn's query id (the release's, else the site's); one record per labelled turn,
  so repeated prompts are separate pairs.
- `confidence`: the probability of the chosen answer (reward-model labels); empty for explicit
  worker labels. `source` says where the label comes from.

Splits: {splits}. Splits are grouped by prompt text: no prompt is in two splits.

Load every split with `datasets.load_dataset("path/to/this/folder")` (Parquet), or one file
with `datasets.load_dataset("json", data_files={{"train": "train.jsonl"}})`.
"""


def write_preference_dataset(
    root: str | Path, splits: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str, about: str
) -> Path:
    """Write ``{split}.jsonl`` and ``{split}.parquet`` per split and the card ``README.md``.

    ``splits`` maps our split names (``train``, ``valid``, ``test``) to records of
    ``preference.RECORD_COLUMNS``; ``about`` is the card's paragraph on where the pairs come from.
    An empty split gets its files but no entry in the card: ``datasets`` refuses a split whose only
    file is empty.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data_files, counts = [], []
    for split, records in splits.items():
        write_jsonl(records, root / f"{split}.jsonl")
        write_parquet(records, root / f"{split}.parquet")
        counts.append(f"{HF_SPLITS[split]} {len(records)}")
        if records:
            data_files.append(f"  - split: {HF_SPLITS[split]}\n    path: {split}.parquet")
    card = CARD.format(title=title, about=about.strip(), data_files="\n".join(data_files), splits=", ".join(counts))
    (root / "README.md").write_text(card)
    return root
