"""Test session setup: offline, CPU, everything written under a temporary MEDTRINITY_HOME.

Environment is set before any project module is imported, because the code location reads
the catalog and corpora configuration at import time (as `dagster dev` does).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TMP_HOME = Path(tempfile.mkdtemp(prefix="medtrinity-tests-"))
os.environ["MEDTRINITY_HOME"] = str(_TMP_HOME)
os.environ.pop("MEDTRINITY_STORAGE", None)
os.environ.pop("MEDTRINITY_KNOWLEDGE_DIR", None)
os.environ["MEDTRINITY_CORPORA"] = str(Path(__file__).parent / "data" / "corpora_small.yaml")
os.environ["MEDTRINITY_MLLM_BACKEND"] = "grounded_composer"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("YOLO_CONFIG_DIR", str(_TMP_HOME / "ultralytics"))
os.environ.setdefault("MEDTRINITY_PATIENT_SALT", "test-salt")
