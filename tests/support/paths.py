"""Where the tests find the shared IFllm release sample (read in place, never copied).

``../shared`` beside the checkout (how CI lays it out), or ``IFLLM_SHARED`` if set.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("IFLLM_SHARED", REPO.parent / "shared"))
MINI = SHARED / "ifllm" / "mini"
DEV_ARCHIVE = SHARED / "ifllm" / "ifllm-dev.tar.xz"
