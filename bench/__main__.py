"""`python -m bench [section ...]`: run the benchmarks (all by default) and write bench/RESULTS.md.

Sections: data_load, classify_latency, grad_cam, drawings, photos, time_to_accuracy, throughput, app_session, export,
serving, serving_memory, visitors, compute_floor, cluster, cluster_sweep.
Each section's rows are kept in bench/out/<section>.json with the machine and date they were measured on, so
rerunning one section leaves the others' figures (and their dates) in the table; rows of sections with no file in
bench/out/ (measured on another machine: the folder is not committed) are kept from RESULTS.md as they were.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time

from .measure import OUT, REPO, Row, machine

SECTIONS = ("data_load", "classify_latency", "grad_cam", "drawings", "photos", "time_to_accuracy", "throughput",
            "app_session", "export", "serving", "serving_memory", "visitors", "compute_floor", "cluster",
            "cluster_sweep")
RESULTS = REPO / "bench" / "RESULTS.md"
# bench/HISTORY.md is written by hand and never rewritten here; the header of every RESULTS.md points to it.
HISTORY_LINE = ("What changed these figures, what was tried and did not help, and earlier measurements: "
                "[HISTORY.md](HISTORY.md).")


def run_section(name: str) -> None:
    print(f"bench: {name} …", flush=True)
    start = time.perf_counter()
    rows = importlib.import_module(f"bench.{name}").run()
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "seconds": time.perf_counter() - start, "rows": [row.__dict__ for row in rows]}
    (OUT / f"{name}.json").write_text(json.dumps(record, indent=1))
    for row in rows:
        print(f"  {row.measure}: {row.value}" + (f"  (target {row.target})" if row.target else ""), flush=True)


def verdict(row: Row) -> str:
    return "" if row.met is None else ("met" if row.met else "**not met**")


def previous_results(fresh_sections: set[str], fresh_names: set[str]) -> tuple[list[str], list[str]]:
    """The table lines and bench times in RESULTS.md of sections this machine has no figures for (bench/out/ is not
    committed): kept as they are, dated by the table they come from when they carry no date of their own."""
    if not RESULTS.exists():
        return [], []
    text = RESULTS.read_text()
    dated = re.search(r"^\| date \| (.+?) \|$", text, re.MULTILINE)
    lines, in_table = [], False
    for line in text.splitlines():
        if line.startswith("| section | measure |"):
            in_table = True
        elif in_table and line.startswith("| ") and line.split(" | ")[0][2:] not in fresh_sections:
            if "(measured " not in line and dated:
                line = line[: -len(" |")].rstrip() + f" (measured {dated.group(1)}) |"
            lines.append(line)
        elif in_table and not line.startswith("|"):
            in_table = False
    times = re.search(r"^Bench time per section: (.*)\.$", text, re.MULTILINE)
    kept_times = [entry for entry in (times.group(1).split(", ") if times else [])
                  if entry.split(" ")[0] not in fresh_names]
    return lines, kept_times


def write_results() -> None:
    records = {name: json.loads((OUT / f"{name}.json").read_text()) for name in SECTIONS
               if (OUT / f"{name}.json").exists()}
    if not records:
        return
    fresh_sections = {row["section"] for record in records.values() for row in record["rows"]}
    kept_lines, kept_times = previous_results(fresh_sections, set(records))
    latest = max(records.values(), key=lambda record: record["machine"]["date"])["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench`); figures as measured, on a quiet machine.",
        HISTORY_LINE,
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in latest.items()),
        "",
        "| section | measure | value | target | | note |",
        "|---|---|---|---|---|---|",
        *kept_lines,
    ]
    for record in records.values():
        stale = "" if record["machine"]["date"] == latest["date"] else f" (measured {record['machine']['date']})"
        for row in (Row(**row) for row in record["rows"]):
            note = row.note + stale if row.note else stale.strip()
            lines.append(f"| {row.section} | {row.measure} | {row.value} | {row.target} | {verdict(row)} | {note} |")
    lines += ["", "Bench time per section: " + ", ".join(
        kept_times + [f"{name} {record['seconds']:.0f} s" for name, record in records.items()]) + "."]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"bench: wrote {RESULTS.relative_to(REPO)}")


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; expected some of: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    for name in argv or SECTIONS:
        run_section(name)
    write_results()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
