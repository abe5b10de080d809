#!/usr/bin/env python3
"""Ratios for BENCHMARKS.md, from criterion's saved results.

Every group's cases are compared with the group's raw libc case doing the
same work, run by run:
for each saved baseline (`cargo bench -- --save-baseline NAME`), the median
time per iteration of a case is divided into (or by) that of the reference,
and the table shows the median of those ratios over the runs, with the
lowest and highest in brackets.

- `create` and `try_clone`: time ratios, case / raw (lower is better).
- `throughput`, `copy`, `relay`: speed ratios, raw time / case time
  (higher is better), so that 1.25 means "1.25x the raw case's rate".

Usage: python3 benches/ratios.py [--markdown] GROUP_PREFIX BASELINE [BASELINE...]
e.g.   python3 benches/ratios.py throughput run1 run2 run3

With --markdown, one table: a row per group, a column per case.
"""

import glob
import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")

# The reference of a case: the raw case doing the same work.
REFERENCE = {
    "PipeOptions capacity 1 MiB": "raw pipe2 + F_SETPIPE_SZ 1 MiB + 2 close",
    "raw pipe2 + F_SETPIPE_SZ 1 MiB + 2 close": "raw pipe2 + F_SETPIPE_SZ 1 MiB + 2 close",
}
# Otherwise, the group's raw case of this name, or else its only raw case.
DEFAULT_REFERENCE = "raw pipe2(O_CLOEXEC) + 2 close"
TIME_RATIO_GROUPS = ("create", "try_clone")


def load(baseline):
    """{group: {function: median ns per iteration}}, in criterion's order."""
    groups = {}
    for path in sorted(glob.glob(os.path.join(CRITERION, "**", baseline, "benchmark.json"), recursive=True)):
        with open(path) as f:
            bench = json.load(f)
        with open(os.path.join(os.path.dirname(path), "sample.json")) as f:
            sample = json.load(f)
        per_iter = [t / i for t, i in zip(sample["times"], sample["iters"])]
        groups.setdefault(bench["group_id"], {})[bench["function_id"]] = statistics.median(per_iter)
    return groups


def ratios_of(runs, group):
    """[(function, [ratio per run], median ns)] in bench order."""
    time_ratio = group.split("/")[0] in TIME_RATIO_GROUPS
    functions = sorted(runs[0][group], key=case_order)
    raw = [f for f in functions if f.startswith("raw")]
    rows = []
    for function in functions:
        reference = REFERENCE.get(function, DEFAULT_REFERENCE if DEFAULT_REFERENCE in raw else raw[0])
        ratios = []
        for run in runs:
            if function in run.get(group, {}) and reference in run[group]:
                case, ref = run[group][function], run[group][reference]
                ratios.append(case / ref if time_ratio else ref / case)
        times = [run[group][function] for run in runs if function in run.get(group, {})]
        if ratios:
            rows.append((function, ratios, statistics.median(times)))
    return rows


def markdown(runs, groups):
    columns = []
    for group in groups:
        for function, _, _ in ratios_of(runs, group):
            if function not in columns:
                columns.append(function)
    print("| group | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for group in groups:
        cells = {f: r for f, r, _ in ratios_of(runs, group)}
        row = []
        for column in columns:
            r = cells.get(column)
            if r is None:
                row.append("")
            elif len(r) == 1:
                row.append(f"{r[0]:.2f}")
            else:
                row.append(f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})")
        print(f"| {group} | " + " | ".join(row) + " |")


def main():
    args = sys.argv[1:]
    as_markdown = args[:1] == ["--markdown"]
    if as_markdown:
        args = args[1:]
    prefix, baselines = args[0], args[1:]
    runs = [load(b) for b in baselines]
    groups = sorted({g for run in runs for g in run if g.startswith(prefix)}, key=sort_key)
    if as_markdown:
        markdown(runs, groups)
        return
    for group in groups:
        time_ratio = group.split("/")[0] in TIME_RATIO_GROUPS
        kind = "time, case / raw" if time_ratio else "rate, x raw"
        print(f"\n{group} ({kind}; median [min-max] over {len(runs)} runs)")
        for function, ratios, median_ns in ratios_of(runs, group):
            print(
                f"  {function:40} {statistics.median(ratios):5.2f} "
                f"[{min(ratios):.2f}-{max(ratios):.2f}]   ({format_time(median_ns)} per iteration)"
            )


def case_order(function):
    # raw cases first, then pipekit, std and os_pipe, as in the benches.
    for rank, word in enumerate(["raw", "pipekit", "PipeOptions", "std::io::pipe", "std::io::Pipe", "os_pipe"]):
        if word in function and not (word == "pipekit" and function.startswith("std::io::copy")):
            return (rank, function)
    return (len(function), function)


def sort_key(group):
    # chunk-4KiB before chunk-64KiB: sort numbers numerically.
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", group)]


def format_time(ns):
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


if __name__ == "__main__":
    main()
