#!/usr/bin/env python3
"""Draws a flowrank report as a per-rank Gantt chart.

usage: plot_timeline.py FILE.h5 OUT.png

Per rank (every rank of /ranks, with its host and status, and every rank with records), one row
of phase bars (/phases: start_s .. start_s + duration_s, one colour per phase)
and below it the steps (/steps: start_s .. end_s), packed into as many lanes as overlapping steps
need (continuous batching runs many at once). All rows share one time axis (seconds since the
run's epoch). Exit status 2 with one line on stderr for a file that is not a flowrank report.
Needs h5py and matplotlib (Debian: python3-h5py, python3-matplotlib).
"""
import sys


def fail(message, code=2):
    print(f"plot_timeline.py: {message}", file=sys.stderr)
    sys.exit(code)


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_report(path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        fail(f"{path}: not an HDF5 file ({e.__class__.__name__})")
    with f:
        tables = {}
        for name, columns in (("phases", ("rank", "phase", "start_s", "duration_s")),
                              ("steps", ("rank", "workflow", "step", "name", "start_s", "end_s"))):
            if name not in f or not isinstance(f[name], h5py.Dataset):
                fail(f"{path}: missing dataset /{name}")
            data = f[name][()]
            fields = data.dtype.names or ()
            for column in columns:
                if column not in fields:
                    fail(f"{path}: /{name} has no column '{column}'")
            tables[name] = data
        title = text(f.attrs.get("job_name", "")) or path
        # Report format 2 and later: every rank, also one that recorded nothing (lost before its first phase).
        ranks = {}
        if "ranks" in f and isinstance(f["ranks"], h5py.Dataset):
            for r in f["ranks"][()]:
                ranks[int(r["rank"])] = f"{text(r['host'])}, {text(r['status'])}"
    return tables["phases"], tables["steps"], title, ranks


def pack_lanes(intervals):
    """Greedy interval partitioning: each interval goes to the first lane free at its start."""
    lane_ends = []
    lanes = []
    for start, end in intervals:
        for i, lane_end in enumerate(lane_ends):
            if lane_end <= start:
                lane_ends[i] = end
                lanes.append(i)
                break
        else:
            lane_ends.append(end)
            lanes.append(len(lane_ends) - 1)
    return lanes, max(len(lane_ends), 1)


def main(argv):
    if len(argv) != 3:
        fail("usage: plot_timeline.py FILE.h5 OUT.png")
    path, out = argv[1], argv[2]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError as e:
        fail(f"needs h5py and matplotlib: {e}", 1)

    phases, steps, title, rank_info = read_report(path)
    ranks = sorted({int(r) for r in phases["rank"]} | {int(r) for r in steps["rank"]}
                   | set(rank_info)) or [0]
    phase_names = []
    for p in phases["phase"]:
        name = text(p)
        if name not in phase_names:
            phase_names.append(name)
    step_names = []
    for s in steps["name"]:
        name = text(s)
        if name not in step_names:
            step_names.append(name)
    cmap = plt.get_cmap("tab20")
    phase_colour = {n: cmap(i % 20) for i, n in enumerate(phase_names)}
    step_cmap = plt.get_cmap("Set2")
    step_colour = {n: step_cmap(i % 8) for i, n in enumerate(step_names)}

    # Rows from the top: for each rank, its phase row, then its step lanes.
    rows = []  # (label, y)
    y = 0.0
    bars_phase = []
    bars_step = []
    for rank in ranks:
        where = f" ({rank_info[rank]})" if rank in rank_info else ""
        rows.append((f"rank {rank}{where} phases", y))
        for p in phases:
            if int(p["rank"]) == rank:
                bars_phase.append((y, float(p["start_s"]), float(p["duration_s"]), text(p["phase"])))
        y += 1
        mine = sorted((s for s in steps if int(s["rank"]) == rank),
                      key=lambda s: (float(s["start_s"]), float(s["end_s"])))
        lanes, lane_count = pack_lanes([(float(s["start_s"]), float(s["end_s"])) for s in mine])
        for s, lane in zip(mine, lanes):
            bars_step.append((y + lane, float(s["start_s"]), float(s["end_s"]) - float(s["start_s"]),
                              text(s["name"])))
        rows.append((f"rank {rank} steps", y + (lane_count - 1) / 2))
        y += lane_count + 0.5

    height = min(max(2.5, 0.25 * y + 1.5), 60)
    fig, ax = plt.subplots(figsize=(12, height))
    for row, start, width, name in bars_phase:
        ax.barh(row, width, left=start, height=0.8, color=phase_colour[name], edgecolor="black",
                linewidth=0.3)
    for row, start, width, name in bars_step:
        ax.barh(row, width, left=start, height=0.8, color=step_colour[name], edgecolor="black",
                linewidth=0.2)
    ax.set_yticks([r[1] for r in rows])
    ax.set_yticklabels([r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since run start")
    ax.set_title(f"flowrank timeline: {title}")
    handles = [Patch(color=phase_colour[n], label=n) for n in phase_names]
    handles += [Patch(color=step_colour[n], label=f"step {n}") for n in step_names]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100)
    except OSError as e:
        fail(f"{out}: cannot write: {e.strerror or e}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
