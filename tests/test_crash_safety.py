"""A process killed with SIGKILL while saving leaves every saved model loadable and nothing half-written."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import wait_until

from fmnist_core.store import ModelStore

pytestmark = pytest.mark.slow  # a subprocess loads TensorFlow and saves a model again and again

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


def save_in_progress(store_dir: Path, holding: str | None) -> bool:
    """Whether a save has begun in `store_dir`: its hidden temporary folder exists (and holds `holding`, if given)."""
    return any(holding is None or (folder / holding).exists() for folder in store_dir.glob(".tmp-*"))


@pytest.mark.parametrize(("kill_after_saves", "holding"), [(1, None), (3, "model.keras")],
                         ids=["its folder made", "its model file begun"])
def test_sigkill_during_saves_never_leaves_a_broken_model(tmp_path, kill_after_saves, holding):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    saver = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
    try:
        for _ in range(kill_after_saves):
            assert saver.stdout.readline().strip() == b"saved"
        # the kill lands inside a save: one of the saves that follow has begun and is not yet renamed into place
        wait_until(lambda: save_in_progress(tmp_path, holding), 60, "no save was seen in progress",
                   interval_seconds=0.002)
    finally:
        saver.send_signal(signal.SIGKILL)
        saver.wait(30)
    store = ModelStore(tmp_path)
    models, warnings = store.list_models()
    assert warnings == []
    assert len(models) >= kill_after_saves
    for saved in models:
        assert store.load_model(saved.name).output_shape == (None, 10)
