#!/usr/bin/env python3
"""System calls per operation, counted with `strace -c`, and user-space
instructions per operation, counted with valgrind's callgrind, for
BENCHMARKS.md.

Runs `target/release/syscalls CASE N` under `strace -c -f` for every case,
subtracts the program's own start-up (case `none`), and prints, per case,
each system call that remains with its count divided by N, as a Markdown
table; then the same under `valgrind --tool=callgrind`, with the
instructions per operation. Build first:
`cargo build --release -p pipekit-bench --bin syscalls`.

Usage: python3 benches/strace-counts.py [N]   (default N = 1000)
"""

import collections
import os
import subprocess
import sys
import tempfile

CASES = [
    ("pipe()", ["raw-pipe", "pipekit-pipe", "std-pipe", "os_pipe-pipe"]),
    ("try_clone()", ["raw-dup", "pipekit-try_clone", "std-try_clone", "os_pipe-try_clone"]),
    ("write + read of 1 byte", ["raw-rw", "pipekit-rw", "std-rw", "os_pipe-rw"]),
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "syscalls")


def counts(case, n):
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(
            ["strace", "-c", "-f", "-o", out.name, BINARY, case, str(n)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        table = collections.Counter()
        for line in out.read().splitlines():
            fields = line.split()
            # "% time seconds usecs/call calls [errors] syscall"
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                table[fields[-1]] += int(fields[3])
        return table


def instructions(case, n):
    with tempfile.NamedTemporaryFile("r", suffix=".callgrind") as out:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", BINARY, case, str(n)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in run.stderr.splitlines():
            # "==PID== Collected : 6497449"
            if "Collected :" in line:
                return int(line.split(":")[-1])
        raise RuntimeError(f"no instruction count from callgrind for {case}")


def print_table(title, column, cell):
    """One Markdown table: a row per case, `cell(case)` in the last column."""
    print(f"{title}\n")
    print(f"| operation | case | {column} |")
    print("|---|---|---|")
    for operation, cases in CASES:
        for case in cases:
            print(f"| {operation} | {case} | {cell(case)} |")
    print()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000

    base_calls = counts("none", n)

    def calls(case):
        table = counts(case, n)
        extra = {name: table[name] - base_calls.get(name, 0) for name in table}
        return ", ".join(f"{name} {count / n:g}" for name, count in sorted(extra.items()) if count > 0)

    base_instructions = instructions("none", n)

    def per_op(case):
        return f"{(instructions(case, n) - base_instructions) / n:.0f}"

    print_table(
        f"System calls per operation (`strace -c -f`, {n} operations, start-up subtracted):",
        "system calls per operation",
        calls,
    )
    print_table(
        f"User-space instructions per operation (callgrind, {n} operations, start-up subtracted):",
        "instructions per operation",
        per_op,
    )


if __name__ == "__main__":
    main()
