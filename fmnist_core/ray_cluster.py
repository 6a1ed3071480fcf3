"""What the dispatcher of a Ray cluster (ray_dispatch.py) sees of it, in a file the web server reads.

With `Settings.ray_address` set, the worker process the app starts (worker.py) becomes the cluster's dispatcher
(ray_dispatch.py): it stays on the web server's machine, beside the queue, claims jobs in the queue's order as the
cluster has room, and trains each run as a Ray task on a node with free CPUs. It writes what it sees of the cluster to
`.jobs/cluster.json` (nodes, free and total job slots, where each job trains, or why the cluster cannot be reached);
the web server (executors.RayCluster) reads that file and never imports Ray (about 1 s and 150 MB it need not
spend).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .store import JOBS_FOLDER

STATUS_FILE = "cluster.json"
# The dispatcher writes its status every few seconds while it runs; older than this, the page says it is not heard.
STATUS_STALE_SECONDS = 30.0


@dataclass(frozen=True)
class ClusterNode:
    node_id: str
    address: str
    cpus: float
    alive: bool

    @property
    def name(self) -> str:
        """How the pages name a node: its address and the start of its Ray id (nodes on one machine share the
        address)."""
        return f"{self.address} ({self.node_id[:6]})"


@dataclass(frozen=True)
class ClusterStatus:
    address: str
    reachable: bool
    problem: str | None = None  # why the cluster cannot train jobs now, in words
    nodes: tuple[ClusterNode, ...] = ()
    total_slots: int = 0
    free_slots: int = 0
    running: dict[str, str] = field(default_factory=dict)  # job id -> the name of the node it trains on
    written_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClusterStatus:
        data = json.loads(text)
        data["nodes"] = tuple(ClusterNode(**node) for node in data.get("nodes", ()))
        return cls(**data)


def slots_of(nodes: tuple[ClusterNode, ...], cpus_per_job: float) -> int:
    """How many jobs of `cpus_per_job` CPUs the live nodes can train at once (a job runs on one node)."""
    return sum(int(node.cpus // cpus_per_job + 1e-9) for node in nodes if node.alive)


def status_path(models_dir: Path) -> Path:
    return Path(models_dir) / JOBS_FOLDER / STATUS_FILE


def write_status(models_dir: Path, status: ClusterStatus) -> None:
    """Replace the status file atomically (a page never reads half of it)."""
    path = status_path(models_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{STATUS_FILE}.{uuid.uuid4().hex[:8]}")
    temporary.write_text(status.to_json(), encoding="utf-8")
    os.replace(temporary, path)


def read_status(models_dir: Path) -> ClusterStatus | None:
    """The dispatcher's last status, or None when there is none (or it cannot be read)."""
    try:
        return ClusterStatus.from_json(status_path(models_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None
