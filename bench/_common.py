"""The start every bench script shares: the repository (and, for some, tests/) on sys.path, models
offline, and the argument parser whose help is the script's docstring.

A script runs as `python bench/<name>.py`, so bench/ is sys.path[0] and `import _common` finds this file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup(offline: bool = False, tests: bool = False) -> Path:
    """Put the repository (and tests/ with `tests`) first on sys.path; `offline`: no Hugging Face downloads."""
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    if tests:
        sys.path.insert(0, str(REPO / "tests"))
    return REPO


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line of a bench script, its whole docstring as the help text."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
