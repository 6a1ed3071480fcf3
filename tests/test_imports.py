"""The modules the app imports at start-up must not pull in TensorFlow (3-4 s), so pages paint first."""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module", ["fmnist_core.store", "fmnist_core.jobs", "fmnist_core.sharing",
                                    "fmnist_core.reporting", "fmnist_core.preprocessing", "fmnist_core.evaluation",
                                    "fmnist_core.dataset_stats", "fmnist_core.export", "fmnist_core.tf_serving",
                                    "views.explain_panel", "views.deploy_panel", "views.resources",
                                    "views.session", "views.submission", "views.charts", "views.sidebar"])
def test_module_loads_without_tensorflow(module):
    code = f"import sys, {module}; sys.exit(('tensorflow' in sys.modules) or ('keras' in sys.modules))"
    repository = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=repository, capture_output=True).returncode == 0
