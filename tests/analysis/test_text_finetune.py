"""Pure parts of the fine-tuned text reward model."""

import math

from analysis.reward.text_finetune import pair_text


def test_pair_text_orders_answers_and_appends_features() -> None:
    text = pair_text("q?", "left answer", "right answer", {"mouse.max_char.1": 12.0, "gaze.x.2": math.nan})
    assert text.index("left answer") < text.index("right answer")
    assert "[Answer 1]\nleft answer" in text
    assert "mouse.max_char.1: 12" in text
    assert "gaze.x.2" not in text  # missing values are left out, not written as nan


def test_pair_text_without_features_has_no_behaviour_block() -> None:
    assert "[Behaviour]" not in pair_text("q", "a", "b")
