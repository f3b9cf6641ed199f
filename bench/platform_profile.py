"""Summarize py-spy raw (collapsed) stacks: the top functions by self and by total time.

    python -m bench.platform_profile FILE... [--top 15]

Each line of a raw profile is `frame;frame;...;leaf count`. Self time is counted on the leaf
frame, total time on every distinct function of the stack; both as a share of all samples (by
thread: py-spy samples the native threads, so tpool's Argon2 threads count beside the hub).
"""

import argparse
import re
import sys
from collections import Counter

LINE = re.compile(r" \(([^)]*?):\d+\)$")


def function(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (path/file.py)`: lines of one function together."""
    return LINE.sub(r" (\1)", frame.strip())


def summarize(lines) -> tuple[int, Counter, Counter]:
    total, self_time, inclusive = 0, Counter(), Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [function(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += samples
        self_time[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    return total, self_time, inclusive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.files:
        with open(path) as stream:
            total, self_time, inclusive = summarize(stream)
        print(f"\n== {path}: {total} samples")
        if not total:
            continue
        print("  self:")
        for name, samples in self_time.most_common(args.top):
            print(f"    {100 * samples / total:5.1f}%  {name}")
        print("  total:")
        for name, samples in inclusive.most_common(args.top):
            print(f"    {100 * samples / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
