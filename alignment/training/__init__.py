"""Pure training and evaluation code for IFllm alignment (SFT, DPO, rDPO, judging).

Nothing here imports Django: tensors, dataframes and plain dicts go in and out, so the same
code runs in a notebook, under ``accelerate launch`` and inside a Celery worker (which the
Django wrapper in ``alignment/`` drives through the ``on_step``/``should_stop`` callbacks).

Modules
-------
losses      DPO / rDPO / NLL loss functions on per-example log-probabilities.
logps       Sequence log-probabilities from causal-LM logits; one-pass chosen+rejected forward.
data        Prompt template, tokenisation with EOS-preserving truncation, padded and packed collators.
reference   Reference log-probs computed once per dataset, and their cache key.
preference  Preference records from explicit labels or reward-model predictions; splits; I/O.
config      Commented dataclass configs (SFTConfig, DPOConfig).
loop        ``train_sft`` and ``train_preference`` built on accelerate, with checkpoints/resume.
generate    Answer generation and test-query selection.
judge       LLM-as-judge prompt, parser and position-bias-cancelling pairwise judging.
evaluate    Table-3-style aggregation (scores, win/tie/loss shares, length groups).
human_eval  MTurk batch export/import and judge-vs-human agreement.
"""
