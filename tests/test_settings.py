"""The server's settings: read once from the environment (known answers for each variable), refused with the
variable's name when they cannot be read, handed to a worker process through its environment, and nothing in the core
reading the environment at import."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core.settings import REPOSITORY_MODELS, Settings, SettingsError

REPO = Path(__file__).resolve().parent.parent


def test_the_defaults_are_todays_limits():
    settings = Settings.from_environment({})
    assert settings.models_dir == REPOSITORY_MODELS and settings.data_dir is None
    assert (settings.max_train_minutes, settings.concurrent_jobs, settings.max_jobs_per_visitor,
            settings.max_waiting_jobs) == (30.0, 1, 2, 12)
    assert (settings.max_saved_runs, settings.max_store_mb) == (100, 1000)
    assert (settings.worker_idle_exit_seconds, settings.worker_stall_seconds) == (60.0, 600.0)
    assert settings.operator_password is None and settings.time_limit_seconds == 1800
    assert (settings.max_jobs_per_address, settings.trusted_proxies) == (4, 0)
    assert (settings.ray_address, settings.cpus_per_job) == (None, 2.0)  # no cluster: this machine's workers
    mem_total_kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal:")).split()[1])
    assert settings.max_training_memory_mb == mem_total_kib * 1024 // 2 // 1_000_000  # half of this machine's


def test_each_variable_sets_its_field_and_overrides_win(tmp_path):
    environ = {"FMNIST_MODELS_DIR": str(tmp_path), "FMNIST_DATA_DIR": "~/fmnist", "FMNIST_MAX_TRAIN_MINUTES": "2.5",
               "FMNIST_CONCURRENT_JOBS": "4", "FMNIST_MAX_JOBS_PER_VISITOR": "3", "FMNIST_MAX_WAITING_JOBS": "40",
               "FMNIST_MAX_SAVED_RUNS": "7", "FMNIST_MAX_STORE_MB": "50", "FMNIST_WORKER_IDLE_EXIT": "5",
               "FMNIST_WORKER_STALL_MINUTES": "0.5", "FMNIST_OPERATOR_PASSWORD": "s3cret", "UNRELATED": "x",
               "FMNIST_MAX_JOBS_PER_ADDRESS": "30", "FMNIST_TRUSTED_PROXIES": "1",
               "FMNIST_MAX_TRAINING_MEMORY_MB": "3000", "FMNIST_RAY_ADDRESS": "10.0.0.5:6379",
               "FMNIST_CPUS_PER_JOB": "4"}
    settings = Settings.from_environment(environ, concurrent_jobs=8, models_dir=None)  # None: not overridden
    assert settings.models_dir == tmp_path and settings.data_dir == Path.home() / "fmnist"
    assert (settings.max_train_minutes, settings.concurrent_jobs, settings.max_jobs_per_visitor,
            settings.max_waiting_jobs, settings.max_saved_runs, settings.max_store_mb) == (2.5, 8, 3, 40, 7, 50)
    assert settings.worker_idle_exit_seconds == 5.0 and settings.worker_stall_seconds == 30.0
    assert settings.operator_password == "s3cret"
    assert (settings.max_jobs_per_address, settings.trusted_proxies, settings.max_training_memory_mb) == (30, 1, 3000)
    assert (settings.ray_address, settings.cpus_per_job) == ("10.0.0.5:6379", 4.0)


@pytest.mark.parametrize(("variable", "text", "message"), [
    ("FMNIST_CONCURRENT_JOBS", "two", r"FMNIST_CONCURRENT_JOBS='two': expected a whole number"),
    ("FMNIST_MAX_TRAIN_MINUTES", "-1", r"max_train_minutes=-1.0: expected a number of at least 0.001"),
    ("FMNIST_MAX_STORE_MB", "1e3", r"FMNIST_MAX_STORE_MB='1e3': expected a whole number"),
    ("FMNIST_WORKER_STALL_MINUTES", "inf", r"worker_stall_seconds=inf: expected a number"),
    ("FMNIST_RAY_ADDRESS", "ray://head", r"ray_address='ray://head': expected HOST:PORT"),
    ("FMNIST_RAY_ADDRESS", "head:99999", r"ray_address='head:99999': expected HOST:PORT"),
    ("FMNIST_CPUS_PER_JOB", "0", r"cpus_per_job=0.0: expected a number of at least 0.1"),
])
def test_a_setting_that_cannot_be_read_is_refused_naming_it_and_the_fix(variable, text, message):
    with pytest.raises(SettingsError, match=message) as error:
        Settings.from_environment({variable: text})
    assert "unset for the default" in str(error.value)


def test_a_worker_started_with_to_environment_reads_the_same_settings_without_the_password(tmp_path):
    settings = Settings(models_dir=tmp_path, max_train_minutes=0.05, concurrent_jobs=3, worker_stall_seconds=90.0,
                        operator_password="never passed on")
    environment = settings.to_environment()
    assert "FMNIST_OPERATOR_PASSWORD" not in environment and environment["FMNIST_WORKER_STALL_MINUTES"] == "1.5"
    assert Settings.from_environment(environment) == settings.with_changes(operator_password=None)


def test_no_module_of_the_core_or_the_pages_reads_the_environment_at_import():
    """Module-level code (outside functions) never touches os.environ or os.getenv: settings.py reads it, when asked."""
    offenders = []
    for path in [*(REPO / "fmnist_core").glob("*.py"), *(REPO / "views").glob("*.py")]:
        tree = ast.parse(path.read_text())
        for statement in tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def _imports_of(path: Path) -> set[str]:
    """The fmnist_core modules `path` imports, at the top or inside functions ('from .x import', 'from . import x')."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
    return found


def test_the_core_has_no_import_cycle():
    modules = {path.stem: _imports_of(path) for path in (REPO / "fmnist_core").glob("*.py")}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(modules.get(module, ())):
            if imported == path[0]:
                cycles.append(" -> ".join([*path, imported]))
            elif imported not in path and imported > path[0]:  # each cycle once, from its smallest module
                visit(imported, [*path, imported])

    for module in sorted(modules):
        visit(module, [module])
    assert cycles == []


def test_importing_a_page_module_runs_nothing():
    """Pages define render() and run it only as st.navigation's script: importing one draws no page."""
    code = ("import sys, views.train, views.evaluate, views.classify, views.runs, views.sweep, views.dataset; "
            "from streamlit.runtime.scriptrunner import get_script_run_ctx; print('imported')")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and completed.stdout.strip() == "imported", completed.stderr[-2000:]
    assert "missing ScriptRunContext" not in completed.stderr  # what Streamlit says when a page draws outside a run


def test_the_app_says_which_setting_it_cannot_read_instead_of_failing(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from views import resources

    monkeypatch.setenv("FMNIST_CONCURRENT_JOBS", "lots")
    resources.use_settings(None)
    resources._settings_from_environment.clear()
    try:
        at = AppTest.from_file("../streamlit_app.py", default_timeout=60).run()
        assert not at.exception
        assert "This server's settings cannot be read: FMNIST_CONCURRENT_JOBS='lots': expected a whole number" in \
            at.error[0].value
    finally:
        resources._settings_from_environment.clear()


def test_the_embedded_default_runs_jobs_in_local_worker_processes_and_says_its_capacity(tmp_path):
    from fmnist_core.executors import LocalWorkers, executor_for
    from fmnist_core.job_queue import JobQueue

    executor = executor_for(Settings(models_dir=tmp_path, concurrent_jobs=3))
    assert isinstance(executor, LocalWorkers) and executor.problem() is None
    queue = JobQueue(tmp_path)
    capacity = executor.capacity(queue)
    assert (capacity.total_slots, capacity.free_slots, capacity.where) == (3, 3, "this machine")
    assert executor.keep_running(queue) is False  # nothing waits: no worker is started
