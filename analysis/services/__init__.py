"""Database side of the analysis, one module per job (HackSoft style: services write, selectors read).

* :mod:`.features` -- the feature table of the database's tasks (cached);
* :mod:`.reward_runs` -- start (``reward_model_run_start``), compute and store reward-model runs;
* :mod:`.text_runs` -- the fine-tuned text reward model;
* :mod:`.figures` -- the behaviour figures;
* :mod:`.selectors` -- the reads they share.

The public names are re-exported here, so ``from analysis.services import ...`` keeps working.
"""

from .base import Progress
from .features import feature_table
from .figures import figures_render, reliability_figure
from .reward_runs import (
    DEFAULT_PARAMS,
    data_report,
    predictions_store,
    results_rows,
    reward_model_run_execute,
    reward_model_run_start,
    workers_file,
)
from .selectors import database_inputs
from .text_runs import TEXT_DEFAULTS, text_reward_run_execute

__all__ = [
    "DEFAULT_PARAMS",
    "TEXT_DEFAULTS",
    "Progress",
    "data_report",
    "database_inputs",
    "feature_table",
    "figures_render",
    "predictions_store",
    "reliability_figure",
    "results_rows",
    "reward_model_run_execute",
    "reward_model_run_start",
    "text_reward_run_execute",
    "workers_file",
]
