"""A process killed with SIGKILL while saving leaves every saved model loadable and nothing half-written."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmnist_core.store import ModelStore

REPO = Path(__file__).resolve().parent.parent

SAVE_FOREVER = """
import sys
from fmnist_core.hyperparameters import preset
from fmnist_core.model import build_model
from fmnist_core.store import ModelStore
hp = preset("best")
model = build_model(hp)
store = ModelStore(sys.argv[1])
while True:
    store.save(model, {"hyperparameters": hp.to_dict()}, "victim")
    print("saved", flush=True)
"""


@pytest.mark.parametrize("kill_after_saves", [1, 3])
def test_sigkill_during_saves_never_leaves_a_broken_model(tmp_path, kill_after_saves):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    saver = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
    try:
        for _ in range(kill_after_saves):
            assert saver.stdout.readline().strip() == b"saved"
        time.sleep(0.05 * kill_after_saves)  # land somewhere inside the next save
    finally:
        saver.send_signal(signal.SIGKILL)
        saver.wait(30)
    store = ModelStore(tmp_path)
    models, warnings = store.list_models()
    assert warnings == []
    assert len(models) >= kill_after_saves
    for saved in models:
        assert store.load_model(saved.name).output_shape == (None, 10)
