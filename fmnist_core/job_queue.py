"""The job queue on disk: SQLite (Python's own sqlite3, no server) in the model store's `.jobs` folder.

It holds every job (waiting, running, ended), each run's per-epoch history and per-batch curve points, and each
sweep's trials. Pages submit, watch, stop and cancel through it; the worker process claims jobs and records
their progress in it. Every call opens its own connection, so any thread of any process may call any method;
writes that must not interleave (a submit's limit check, a claim) run in one `BEGIN IMMEDIATE` transaction.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

from .events import BatchEnd, TrialEnd
from .hyperparameters import HyperParameters, TrainingMemoryError, check_training_memory
from .jobs import (
    FAIR_SHARE_SECONDS,
    KEEP_ENDED_JOBS,
    MAX_BATCH_POINTS,
    MAX_RESUMES,
    RUN,
    RUNNING_STATES,
    SWEEP,
    JobSnapshot,
    JobState,
    QueueFullError,
)
from .ownership import NotYoursError, Visitor
from .settings import Settings, setting_variable
from .store import JOBS_FOLDER, SWEEPS_FOLDER, ModelStore, estimated_model_bytes
from .sweep import Range, SweepSpec, spec_to_dict

DATABASE_FILE = "queue.sqlite3"
CHECKPOINTS_FOLDER = "checkpoints"
NOT_YOURS = "only the visitor who started it, or the operator, can {verb} it."

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the queue's order
    job_id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    run_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    preset TEXT,
    hyperparameters TEXT,  -- JSON, a run's
    spec TEXT,  -- JSON, a sweep's
    from_sweep TEXT,  -- JSON [sweep job id, trial id]
    stop_requested INTEGER NOT NULL DEFAULT 0,
    stopped_by_time_limit INTEGER NOT NULL DEFAULT 0,
    slot INTEGER,  -- the worker slot running it
    worker_pid INTEGER,
    resumes INTEGER NOT NULL DEFAULT 0,
    last_batch TEXT,  -- JSON BatchEnd
    error TEXT,
    traceback TEXT,
    saved_name TEXT,
    test_accuracy REAL
);
CREATE TABLE IF NOT EXISTS epochs (job_id TEXT NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL,
                                   PRIMARY KEY (job_id, epoch));
CREATE TABLE IF NOT EXISTS batch_points (job_id TEXT NOT NULL, position REAL, loss REAL, accuracy REAL);
CREATE INDEX IF NOT EXISTS batch_points_job ON batch_points (job_id);
CREATE TABLE IF NOT EXISTS trials (job_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trials_job ON trials (job_id);
-- the address_key of the network address a job was submitted from (none: this machine, the command line); a table
-- of its own rather than a column of jobs, so that a queue file made before it needs no migration
CREATE TABLE IF NOT EXISTS job_addresses (job_id TEXT PRIMARY KEY, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_addresses_address ON job_addresses (address);
"""
_RUNNING = "(" + ",".join(f"'{state}'" for state in RUNNING_STATES) + ")"
_ACTIVE = "(" + ",".join(f"'{state}'" for state in (JobState.QUEUED.value, *RUNNING_STATES)) + ")"


# How long one operation waits for another program's write lock on the database (a backup tool, a person with the
# sqlite3 shell) before it says the queue is busy: a page must not hang, and a worker retries later.
BUSY_SECONDS = 5.0


class JobQueueError(RuntimeError):
    """The queue's database cannot be opened or written; the message says why and what to check."""


class QueueBusyError(JobQueueError, QueueFullError):
    """Another program holds the queue's database for longer than BUSY_SECONDS: nothing was written; try again soon.
    (A QueueFullError too: a job submitted now was not queued, and the page says why.)"""


class StaleWorkerError(RuntimeError):
    """A worker wrote to a job it no longer holds (it was taken up again by another worker); nothing was written."""


class JobGoneError(StaleWorkerError):
    """A worker wrote to a job the queue no longer has (its database was deleted and made anew)."""


class JobQueue:
    """The queue of one model store (`root`): `<root>/.jobs/queue.sqlite3`, taking at most `max_jobs_per_visitor`
    active jobs per visitor, `max_jobs_per_address` per network address, `max_waiting_jobs` waiting in all, and runs
    whose training needs at most `max_training_memory_mb` (`JobQueue.from_settings` builds the server's)."""

    def __init__(self, root: Path | str, *, max_jobs_per_visitor: int = Settings.max_jobs_per_visitor,
                 max_waiting_jobs: int = Settings.max_waiting_jobs,
                 max_jobs_per_address: int = Settings.max_jobs_per_address,
                 max_training_memory_mb: int = Settings.max_training_memory_mb, busy_seconds: float = BUSY_SECONDS):
        self.max_jobs_per_visitor, self.max_waiting_jobs = max_jobs_per_visitor, max_waiting_jobs
        self.max_jobs_per_address, self.max_training_memory_mb = max_jobs_per_address, max_training_memory_mb
        self.busy_seconds = busy_seconds
        self.folder = Path(root) / JOBS_FOLDER
        self.path = self.folder / DATABASE_FILE
        with self._connect():
            pass  # opens (and makes, the first time) the database now: a queue that cannot be opened says so here

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        """The job queue beside the model store of `settings`, with their limits; JobQueueError if it cannot open."""
        return cls(settings.models_dir, max_jobs_per_visitor=settings.max_jobs_per_visitor,
                   max_waiting_jobs=settings.max_waiting_jobs, max_jobs_per_address=settings.max_jobs_per_address,
                   max_training_memory_mb=settings.max_training_memory_mb)

    @contextmanager
    def _connect(self):
        """A connection for one operation. Every database failure leaves here as a JobQueueError in words (never a
        raw sqlite3 error with the server's paths): QueueBusyError when another program holds the database, and a
        database that went missing (deleted with its -wal and -shm) is made anew, empty, and said so once."""
        try:
            missing = not self.path.exists()
            if missing:
                self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.busy_seconds, isolation_level=None)
        except (OSError, sqlite3.Error) as error:  # named by folder: the server's paths are never shown to visitors
            raise JobQueueError(
                f"the job queue ({JOBS_FOLDER}/{DATABASE_FILE} in the model folder) cannot be opened "
                f"({getattr(error, 'strerror', None) or error}). Check that the model folder is writable and its disk "
                "has space, then reload the page.") from None
        with closing(db):
            try:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA synchronous=FULL")  # a committed write survives a crash of the machine, not ours
                if missing:
                    self._create(db)
                yield db
            except sqlite3.Error as error:  # only the database's own errors: the caller's go through as they are
                raise self._in_words(error) from None

    def _create(self, db: sqlite3.Connection) -> None:
        if any(self.folder.joinpath(CHECKPOINTS_FOLDER).glob("*")):
            _log.error("the job queue's database %s was missing and is made anew, empty: the jobs it held are gone "
                       "(their checkpoints are removed as the next worker starts)", self.path.name)
        db.execute("PRAGMA journal_mode=WAL")  # readers (pages) never wait for the writer (the worker)
        db.executescript(_SCHEMA)

    def _in_words(self, error: sqlite3.Error) -> JobQueueError:
        text = str(error)
        if "locked" in text or "busy" in text:
            return QueueBusyError(
                f"the job queue is busy: another program has held its database ({JOBS_FOLDER}/{DATABASE_FILE} in the "
                f"model folder) for over {self.busy_seconds:g} s. Nothing was changed; try again in a minute.")
        if "no such table" in text:  # emptied by hand, or made by something else: make the tables again
            with suppress(sqlite3.Error), closing(sqlite3.connect(self.path, timeout=self.busy_seconds)) as db:
                self._create(db)
            return JobQueueError("the job queue's database had lost its tables and was made anew, empty. Try again.")
        return JobQueueError(
            f"the job queue ({JOBS_FOLDER}/{DATABASE_FILE} in the model folder) cannot be read or written ({text}). "
            "Check that the model folder is writable and its disk has space, then reload the page.")

    @contextmanager
    def _transaction(self):
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def checkpoint_dir(self, job_id: str) -> Path:
        return self.folder / CHECKPOINTS_FOLDER / job_id

    # ---- what pages do ---------------------------------------------------------------------------
    def submit(self, kind: str, run_name: str, owner: str, preset: str | None = None,
               hyperparameters: HyperParameters | None = None, spec=None,
               from_sweep: tuple[str, str] | None = None, store: ModelStore | None = None,
               address: str | None = None) -> JobSnapshot:
        """Put a job at the end of the queue. Raises QueueFullError when the visitor (`owner`, a browser), their
        network address (`address`, its address_key; None: not counted) or the queue is at its limit, naming the jobs
        that must end or start first, or when a run would need more memory to train than the server allows.
        A run with a `store` reserves room there for its model (StoreFullError when there is none, counting the room
        every queued or training run holds), so that a run allowed to start is never refused at its save."""
        if kind not in (RUN, SWEEP):
            raise ValueError(f"kind={kind!r}: expected {RUN!r} or {SWEEP!r}.")
        if kind == RUN and hyperparameters is not None:
            try:
                check_training_memory(hyperparameters, self.max_training_memory_mb * 1e6,
                                      setting_variable("max_training_memory_mb"))
            except TrainingMemoryError as error:
                raise QueueFullError(str(error)) from None
        spec_json = None if spec is None else json.dumps(spec_to_dict(spec))
        job_id = uuid.uuid4().hex[:12]
        with self._transaction() as db:
            mine = [row[0] for row in db.execute(f"SELECT job_id FROM jobs WHERE owner=? AND state IN {_ACTIVE} "
                                                 "ORDER BY seq", (owner,))]
            if len(mine) >= self.max_jobs_per_visitor:
                raise QueueFullError(
                    f"you already have {len(mine)} jobs waiting or training, the most one visitor may have at once "
                    f"({self.max_jobs_per_visitor}). Cancel one of yours, or wait until one has ended.", tuple(mine))
            if address is not None:
                theirs = [row[0] for row in db.execute(
                    f"SELECT job_id FROM jobs JOIN job_addresses USING (job_id) WHERE address=? AND state IN {_ACTIVE} "
                    "ORDER BY seq", (address,))]
                if len(theirs) >= self.max_jobs_per_address:
                    raise QueueFullError(
                        f"{len(theirs)} jobs from your network address are waiting or training, the most one address "
                        f"may have at once ({self.max_jobs_per_address}), whichever browsers started them. Wait until "
                        "one has ended. (A class that reaches this server from one address: the operator can raise "
                        f"{setting_variable('max_jobs_per_address')}.)", tuple(theirs))
            waiting = self._claim_order(db, time.time())
            if len(waiting) >= self.max_waiting_jobs:
                raise QueueFullError(
                    f"the queue is full: {len(waiting)} jobs are waiting, the most this server takes "
                    f"({self.max_waiting_jobs}). Try again when some have started.", tuple(waiting), until="started")
            if kind == RUN and store is not None:
                reserved = [self._stored_hyperparameters(row["hyperparameters"]) for row in db.execute(
                    f"SELECT hyperparameters FROM jobs WHERE kind=? AND state IN {_ACTIVE} AND saved_name IS NULL",
                    (RUN,))]
                store.check_room(estimated_model_bytes(hyperparameters.parameter_count()), len(reserved),
                                 sum(estimated_model_bytes(hp.parameter_count()) for hp in reserved if hp))
            db.execute(
                "INSERT INTO jobs (job_id, kind, run_name, owner, state, submitted_at, preset, hyperparameters, "
                "spec, from_sweep) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, run_name, owner, JobState.QUEUED.value, time.time(), preset,
                 hyperparameters.to_json() if hyperparameters is not None else None, spec_json,
                 json.dumps(list(from_sweep)) if from_sweep else None))
            if address is not None:
                db.execute("INSERT INTO job_addresses VALUES (?,?)", (job_id, address))
        return self.snapshot(job_id)

    def cancel(self, job_id: str, actor: Visitor) -> bool:
        """Take a waiting job out of the queue for `actor` (its owner or the operator; anyone else gets
        NotYoursError); False when it had already started (or ended)."""
        self._check_control(job_id, actor, "cancel")
        with self._transaction() as db:
            changed = db.execute("UPDATE jobs SET state=?, ended_at=? WHERE job_id=? AND state=?",
                                 (JobState.CANCELLED.value, time.time(), job_id, JobState.QUEUED.value)).rowcount
            pruned = self._prune(db, job_id) if changed else []
        if changed:
            self._remove_files(job_id, pruned)
        return changed == 1

    def request_stop(self, job_id: str, actor: Visitor) -> None:
        """Ask the worker to stop a running job after its current batch (what it did is kept), for `actor` (its
        owner or the operator; anyone else gets NotYoursError). A run waiting to resume after a crash may be stopped
        too: the worker then saves what it had trained without training on."""
        self._check_control(job_id, actor, "stop")
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET stop_requested=1 WHERE job_id=? AND (state IN {_RUNNING} OR "
                       "(state=? AND resumes>0))", (job_id, JobState.QUEUED.value))

    def _check_control(self, job_id: str, actor: Visitor, verb: str) -> None:
        with self._connect() as db:
            row = db.execute("SELECT owner FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is not None and not actor.may_control(row["owner"]):
            raise NotYoursError(NOT_YOURS.format(verb=verb).capitalize())

    def running_slots(self) -> set[int]:
        """The worker slots that jobs recorded as running are in (a slot may be beyond today's CONCURRENT_JOBS)."""
        with self._connect() as db:
            return {row[0] for row in db.execute(f"SELECT DISTINCT slot FROM jobs WHERE state IN {_RUNNING} "
                                                 "AND slot IS NOT NULL")}

    def snapshot(self, job_id: str, with_curves: bool = True) -> JobSnapshot | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
            return None if row is None else self._snapshot(db, row, with_curves)

    def active(self) -> list[JobSnapshot]:
        """Running jobs, then waiting ones in the order the worker will take them; without their batch points."""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE state IN {_ACTIVE} ORDER BY seq").fetchall()
            waiting = {row["job_id"]: row for row in rows if row["state"] == JobState.QUEUED.value}
            order = [job_id for job_id in self._claim_order(db, time.time()) if job_id in waiting]
            rows = [row for row in rows if row["job_id"] not in waiting] + [waiting[job_id] for job_id in order]
            return [self._snapshot(db, row, with_curves=False) for row in rows]

    def latest(self, kind: str | None = None, owner: str | None = None) -> JobSnapshot | None:
        """The running job (of `kind`, of `owner`), else the one that started last; waiting and cancelled jobs
        aside."""
        kinds = (kind,) if kind else (RUN, SWEEP)
        owners = "" if owner is None else " AND owner=?"
        with self._connect() as db:
            row = db.execute(
                f"SELECT * FROM jobs WHERE kind IN ({','.join('?' * len(kinds))}) AND started_at IS NOT NULL{owners} "
                f"AND state != '{JobState.CANCELLED.value}' "  # a run cancelled while it waited to resume
                f"ORDER BY state IN {_RUNNING} DESC, started_at DESC LIMIT 1",
                (*kinds, *([] if owner is None else [owner]))).fetchone()
            return None if row is None else self._snapshot(db, row, with_curves=True)

    def recent(self, count: int) -> list[JobSnapshot]:
        """The `count` jobs submitted last, whatever their state, oldest first; without their batch points."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (count,)).fetchall()
            return [self._snapshot(db, row, with_curves=False) for row in reversed(rows)]

    def newest(self) -> JobSnapshot | None:
        """The job submitted last, whatever its state."""
        newest = self.recent(1)
        return self.snapshot(newest[0].job_id) if newest else None

    def recent_images_per_second(self) -> float | None:
        """Training speed on this server: the images/s of the last epoch any job finished, if any."""
        with self._connect() as db:
            row = db.execute("SELECT data FROM epochs ORDER BY rowid DESC LIMIT 1").fetchone()
        return json.loads(row["data"])["images_per_second"] if row else None

    # ---- what the worker does --------------------------------------------------------------------
    def claim_next(self, slot: int, pid: int) -> JobSnapshot | None:
        """Take the next waiting job (`_claim_order`) for worker `slot`, atomically (two workers never take the same
        job)."""
        with self._transaction() as db:
            order = self._claim_order(db, time.time())
            if not order:
                return None
            db.execute("UPDATE jobs SET state=?, slot=?, worker_pid=?, started_at=COALESCE(started_at, ?) "
                       "WHERE job_id=?", (JobState.STARTING.value, slot, pid, time.time(), order[0]))
        return self.snapshot(order[0])

    @staticmethod
    def _claim_order(db: sqlite3.Connection, now: float) -> list[str]:
        """The waiting jobs' ids in the order the worker takes them. First the jobs put back after a crash (they had
        started), in queue order; then, each time, the oldest job of whoever has had the fewest jobs started in the
        last FAIR_SHARE_SECONDS, counting the jobs taken before it in this order: whoever by network address first
        (new browser ids do not make a new visitor), then by browser (visitors behind one address take turns too).
        Jobs without an address count as their browser's. The same rows always give the same order."""

        def who(row: sqlite3.Row) -> tuple[str, str]:
            return ("address", row["address"]) if row["address"] else ("browser", row["owner"])

        started, started_by_browser = Counter(), Counter()
        for row in db.execute("SELECT owner, address FROM jobs LEFT JOIN job_addresses USING (job_id) "
                              "WHERE started_at >= ?", (now - FAIR_SHARE_SECONDS,)):
            started[who(row)] += 1
            started_by_browser[row["owner"]] += 1
        waiting = db.execute("SELECT job_id, owner, address, resumes FROM jobs LEFT JOIN job_addresses "
                             "USING (job_id) WHERE state=? ORDER BY seq", (JobState.QUEUED.value,)).fetchall()
        order = []
        while waiting:  # a dozen jobs at most: the simple way is fast enough
            row = min(waiting, key=lambda job: (job["resumes"] == 0, started[who(job)],
                                                started_by_browser[job["owner"]]))  # ties: the first, the oldest
            waiting.remove(row)
            order.append(row["job_id"])
            started[who(row)] += 1
            started_by_browser[row["owner"]] += 1
        return order

    def requeue_interrupted(self, slot: int) -> list[str]:
        """Put the jobs a dead worker of `slot` was running back at their place in the queue, to resume.
        Only call it holding that slot's lock (see worker.py): then no live worker runs them."""
        with self._transaction() as db:
            rows = db.execute(f"SELECT job_id, resumes FROM jobs WHERE slot=? AND state IN {_RUNNING}",
                              (slot,)).fetchall()
            ids = [row["job_id"] for row in rows if row["resumes"] < MAX_RESUMES]
            db.executemany("UPDATE jobs SET state=?, resumes=resumes+1, slot=NULL, worker_pid=NULL WHERE job_id=?",
                           [(JobState.QUEUED.value, job_id) for job_id in ids])
            given_up = [row["job_id"] for row in rows if row["resumes"] >= MAX_RESUMES]
            db.executemany("UPDATE jobs SET state=?, ended_at=?, error=? WHERE job_id=?", [
                (JobState.FAILED.value, time.time(),
                 f"its training process died or hung {MAX_RESUMES + 1} times while running it (killed, perhaps for "
                 "using too much memory); it was not started again. Try a smaller model or batch size.", job_id)
                for job_id in given_up])
        for job_id in given_up:
            shutil.rmtree(self.checkpoint_dir(job_id), ignore_errors=True)
        return ids

    def note_resume(self, job_id: str, holder: int) -> int:
        """A running job taken up again by the process that holds it (its cluster node died): count the resume, as
        `requeue_interrupted` does for a dead worker; returns how many resumes the job has had."""
        with self._transaction() as db:
            self._check_holder(db, job_id, holder)
            db.execute("UPDATE jobs SET resumes=resumes+1 WHERE job_id=?", (job_id,))
            return db.execute("SELECT resumes FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0]

    # A worker's writes are fenced: each applies only while the job is running under the process that claimed it
    # (`holder`, its pid). A worker taken for dead whose job was put back and claimed by another gets
    # StaleWorkerError and writes nothing, whatever the slot locks say.
    def _check_holder(self, db: sqlite3.Connection, job_id: str, holder: int) -> None:
        row = db.execute("SELECT worker_pid, state FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise JobGoneError(f"job {job_id} is no longer in the queue (its database was made anew).")
        if row["worker_pid"] != holder or row["state"] not in RUNNING_STATES:
            _log.error("job %s: a write from worker %s, which no longer holds it, was refused", job_id, holder)
            raise StaleWorkerError(f"job {job_id} is no longer held by worker {holder}; nothing was written.")

    def set_state(self, job_id: str, state: JobState, holder: int) -> None:
        with self._transaction() as db:
            self._check_holder(db, job_id, holder)
            db.execute("UPDATE jobs SET state=? WHERE job_id=?", (state.value, job_id))

    def stop_requested(self, job_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT stop_requested FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def record_progress(self, job_id: str, holder: int, last_batch: BatchEnd | None,
                        points: list[tuple[float, float, float]], epochs: list[dict] = (),
                        trials: list[TrialEnd] = (), state: JobState | None = None) -> None:
        """The worker's buffered events, in one transaction: the last batch, new curve points, epochs, trials, and
        the job's new state if it changed."""
        with self._transaction() as db:
            self._check_holder(db, job_id, holder)
            if state is not None:
                db.execute("UPDATE jobs SET state=? WHERE job_id=?", (state.value, job_id))
            if last_batch is not None:
                db.execute("UPDATE jobs SET last_batch=? WHERE job_id=?", (json.dumps(last_batch.__dict__), job_id))
            db.executemany("INSERT INTO batch_points VALUES (?,?,?,?)", [(job_id, *point) for point in points])
            db.executemany("INSERT OR REPLACE INTO epochs VALUES (?,?,?)",
                           [(job_id, epoch["epoch"], json.dumps(epoch)) for epoch in epochs])
            if trials:
                start = db.execute("SELECT COUNT(*) FROM trials WHERE job_id=?", (job_id,)).fetchone()[0]
                db.executemany("INSERT INTO trials VALUES (?,?,?)", [
                    (job_id, start + index, json.dumps(trial.__dict__)) for index, trial in enumerate(trials)])
            if trials and last_batch is None:
                db.execute("UPDATE jobs SET last_batch=NULL WHERE job_id=?", (job_id,))

    def restart_history(self, job_id: str, holder: int, history: list[dict]) -> None:
        """A resumed run: its epochs become the checkpoint's (none, when it had no checkpoint yet); curve points past
        them, and the last batch, are dropped."""
        with self._transaction() as db:
            self._check_holder(db, job_id, holder)
            db.execute("DELETE FROM epochs WHERE job_id=?", (job_id,))
            db.executemany("INSERT INTO epochs VALUES (?,?,?)",
                           [(job_id, epoch["epoch"], json.dumps(epoch)) for epoch in history])
            db.execute("DELETE FROM batch_points WHERE job_id=? AND position>?", (job_id, len(history)))
            db.execute("UPDATE jobs SET last_batch=NULL WHERE job_id=?", (job_id,))

    def finish(self, job_id: str, holder: int, state: JobState, saved_name: str | None = None,
               test_accuracy: float | None = None, stopped_by_time_limit: bool = False, error: str | None = None,
               traceback: str | None = None) -> None:
        """Record how a job ended; its checkpoint, of no use any more, is removed, and ended jobs beyond the
        KEEP_ENDED_JOBS that ended last are deleted."""
        with self._transaction() as db:
            self._check_holder(db, job_id, holder)
            db.execute("UPDATE jobs SET state=?, ended_at=?, saved_name=?, test_accuracy=?, stopped_by_time_limit=?, "
                       "error=?, traceback=? WHERE job_id=?",
                       (state.value, time.time(), saved_name, test_accuracy, int(stopped_by_time_limit), error,
                        traceback, job_id))
            pruned = self._prune(db, job_id)
        self._remove_files(job_id, pruned)

    @staticmethod
    def _prune(db: sqlite3.Connection, ending: str) -> list[str]:
        """Delete the ended jobs beyond the KEEP_ENDED_JOBS that ended last (never `ending`, the job ending now),
        with their rows in the other tables; their ids."""
        old = [row[0] for row in db.execute(
            f"SELECT job_id FROM jobs WHERE state NOT IN {_ACTIVE} AND job_id != ? "
            "ORDER BY ended_at DESC, seq DESC LIMIT -1 OFFSET ?", (ending, KEEP_ENDED_JOBS - 1))]
        for table in ("epochs", "batch_points", "trials", "job_addresses", "jobs"):
            db.executemany(f"DELETE FROM {table} WHERE job_id=?", [(job_id,) for job_id in old])
        return old

    def remove_orphaned_checkpoints(self) -> list[str]:
        """Delete the checkpoints of jobs the queue no longer has (its database was deleted and made anew, say) or
        that have ended; their job ids. Only call it holding a worker slot: a checkpoint of a live job is kept."""
        folder = self.folder / CHECKPOINTS_FOLDER
        if not folder.is_dir():
            return []
        with self._connect() as db:
            active = {row[0] for row in db.execute(f"SELECT job_id FROM jobs WHERE state IN {_ACTIVE}")}
        orphans = [path.name for path in folder.iterdir() if path.name not in active]
        for job_id in orphans:
            shutil.rmtree(folder / job_id, ignore_errors=True)
        return orphans

    def _remove_files(self, ended: str, pruned: list[str]) -> None:
        """The checkpoint of the job that `ended`, of no use any more, and every file of the `pruned` jobs."""
        for job_id in (ended, *pruned):
            shutil.rmtree(self.checkpoint_dir(job_id), ignore_errors=True)
        for job_id in pruned:
            shutil.rmtree(self.folder.parent / SWEEPS_FOLDER / job_id, ignore_errors=True)  # keras-tuner's trials

    # ---- reading rows ----------------------------------------------------------------------------
    def _snapshot(self, db: sqlite3.Connection, row: sqlite3.Row, with_curves: bool) -> JobSnapshot:
        job_id = row["job_id"]
        points = ()
        if with_curves:  # the per-batch points, thinned in SQL to at most MAX_BATCH_POINTS: only the curves need them
            total = db.execute("SELECT COUNT(*) FROM batch_points WHERE job_id=?", (job_id,)).fetchone()[0]
            step = max(1, -(-total // MAX_BATCH_POINTS))
            points = tuple(tuple(point) for point in db.execute(
                "SELECT position, loss, accuracy FROM (SELECT position, loss, accuracy, ROW_NUMBER() OVER "
                "(ORDER BY rowid) - 1 AS n FROM batch_points WHERE job_id=?) WHERE n % ? = 0 ORDER BY n",
                (job_id, step)))
        epochs = tuple(json.loads(r["data"]) for r in db.execute(
            "SELECT data FROM epochs WHERE job_id=? ORDER BY epoch", (job_id,)))
        trials = tuple(TrialEnd(**json.loads(r["data"])) for r in db.execute(
            "SELECT data FROM trials WHERE job_id=? ORDER BY seq", (job_id,)))
        return JobSnapshot(
            job_id=job_id, kind=row["kind"], run_name=row["run_name"], owner=row["owner"],
            state=JobState(row["state"]), submitted_at=row["submitted_at"], started_at=row["started_at"],
            last_batch=BatchEnd(**json.loads(row["last_batch"])) if row["last_batch"] else None,
            stop_requested=bool(row["stop_requested"]), stopped_by_time_limit=bool(row["stopped_by_time_limit"]),
            error=row["error"], traceback=row["traceback"], resumes=row["resumes"], ended_at=row["ended_at"],
            preset=row["preset"], hyperparameters=self._stored_hyperparameters(row["hyperparameters"]),
            batch_points=points, epochs=epochs, saved_name=row["saved_name"], test_accuracy=row["test_accuracy"],
            from_sweep=tuple(json.loads(row["from_sweep"])) if row["from_sweep"] else None,
            spec=self._stored_spec(row["spec"]), trials=trials, worker_pid=row["worker_pid"],
        )

    # Rows are read as they were stored, without today's checks: a rule tightened since must not break every page
    # that lists jobs. The worker checks a job's settings against today's rules before it trains (worker.py).
    @staticmethod
    def _stored_hyperparameters(text: str | None) -> HyperParameters | None:
        return None if not text else as_stored(HyperParameters, json.loads(text))

    @staticmethod
    def _stored_spec(text: str | None):
        if not text:
            return None
        data = json.loads(text)
        data["vary"] = tuple((name, as_stored(Range, values) if isinstance(values, dict) else tuple(values))
                             for name, values in data.get("vary", ()))
        return as_stored(SweepSpec, data)


def as_stored(cls: type, data: dict[str, Any]):
    """A frozen dataclass `cls` made from stored `data` without its checks (`__post_init__`): unknown keys are
    dropped, missing ones take their defaults, lists become tuples."""
    instance = object.__new__(cls)
    for spec in dataclasses.fields(cls):
        if spec.name in data:
            value = data[spec.name]
            value = tuple(value) if isinstance(value, list) else value
        elif spec.default is not dataclasses.MISSING:
            value = spec.default
        else:
            value = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else None
        object.__setattr__(instance, spec.name, value)
    return instance
