"""A distributed sweep: a chief (the oracle) and two workers as separate processes on 127.0.0.1."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # three processes each load TensorFlow and train

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # seconds for the whole sweep; it takes about a minute on a busy 2-core machine
GRID = {("0.001", "0.1"), ("0.001", "0.3"), ("0.0001", "0.1"), ("0.0001", "0.3")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sweep_command(tmp_path: Path, port: int, *role: str) -> list[str]:
    return [sys.executable, "-m", "fmnist_core", "--models-dir", str(tmp_path / "models"), "sweep",
            "--preset", "softmax-regression", "--vary", "learning_rate=1e-3,1e-4", "--vary", "dropout_rate=0.1,0.3",
            "--strategy", "grid", "--max-trials", "4", "--epochs", "1", "--subset", "1000",
            "--sweep-dir", str(tmp_path / "sweep"), "--oracle-ip", "127.0.0.1", "--oracle-port", str(port), *role]


def test_a_chief_and_two_workers_run_every_trial_exactly_once_and_report_the_best(tmp_path):
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": "1"}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)  # the CLI's --chief/--worker set them
    roles = [("--chief",), ("--worker", "--worker-id", "a"), ("--worker", "--worker-id", "b")]
    processes = []
    try:
        for role in roles:
            processes.append(subprocess.Popen(sweep_command(tmp_path, port, *role), cwd=ROOT, env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        outputs = [process.communicate(timeout=TIMEOUT)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    chief, *workers = outputs
    assert [process.returncode for process in processes] == [0, 0, 0], outputs

    # the workers' logs: which trials each ran
    ran = [trial for log in workers for trial in re.findall(r"^trial (\d+) completed on worker-", log, re.M)]
    assert sorted(ran) == ["0", "1", "2", "3"], workers  # every trial exactly once, across both workers
    assert all("no trials left" in log for log in workers)

    # the chief's table: the oracle's record of the four trials, the whole grid, and the best one
    rows = re.findall(r"^(\d+)\s+(\S+)\s+(\S+)\s+(0\.\d{4})\s+1\s+\S+ completed$", chief, re.M)
    assert len(rows) == 4, chief
    assert {(lr, dropout) for _, dropout, lr, _ in rows} == GRID  # columns are sorted: dropout_rate, learning_rate
    best_id, *_, best_accuracy = max(rows, key=lambda row: float(row[3]))
    assert f"best trial {best_id}: val_accuracy {best_accuracy}" in chief
