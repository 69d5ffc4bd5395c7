"""Turn matching (paper appendix B.1): re-exported from :mod:`analysis.features.matching`.

The implementation lives inside the pure ``analysis.features`` package (checked to import no
Django, and imported by the feature code); this module keeps the short import path
``analysis.matching`` for notebooks and the Django layer.
"""

from analysis.features.matching import (  # noqa: F401
    DEFAULT_INSTRUCTION_TEXTS,
    DEFAULT_MATCH_CONFIG,
    RULES,
    TURN_BEFORE_MATCH,
    TURN_INSTRUCTION,
    TURN_UNMATCHED,
    MatchConfig,
    TaskMatch,
    align_instants,
    classify_snippet,
    clock_shift,
    match_instants,
    match_task,
    merge_reports,
    occurs_near,
    order_turns,
    turn_texts,
)
