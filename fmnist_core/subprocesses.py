"""The command line (`python -m fmnist_core …`) run in a process of its own, for work whose memory and CPU should stay
out of the caller (the web server): scoring a model on the test set, making and checking an export."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

_log = logging.getLogger(__name__)
REPOSITORY = Path(__file__).resolve().parent.parent


class CommandFailedError(RuntimeError):
    """The command failed or took too long; the message says why in words (no traceback, no server path)."""


def run_command(arguments: list[str], models_dir: Path | str, environment: dict[str, str],
                timeout_seconds: float) -> str:
    """Run `python -m fmnist_core --models-dir MODELS_DIR ARGUMENTS…` and return what it printed; CommandFailedError
    with its last error line (the model folder named, not its path) when it fails, and after `timeout_seconds`."""
    command = [sys.executable, "-m", "fmnist_core", "--models-dir", str(models_dir), *arguments]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds,
                                   env={**environment, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=REPOSITORY)
    except subprocess.TimeoutExpired:
        raise CommandFailedError(f"it took over {timeout_seconds / 60:g} minutes and was stopped; nothing was kept. "
                                 "Try again when the server is less busy.") from None
    if completed.returncode != 0:
        _log.error("%s failed (exit %s): %s", " ".join(arguments[:2]), completed.returncode, completed.stderr[-4000:])
        reason = (completed.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
        raise CommandFailedError(reason.replace(str(models_dir), "the model folder"))
    return completed.stdout
