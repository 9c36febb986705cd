"""Summarise a CubeCL kernel-profile log (CUBECL_DEBUG_OPTION=profile with a cubecl.toml naming
the file, as measure.sh's `profile` step does) of `spiral-bench train-gpu`: GPU time per step, split
into the forward pass and the rest, and per kernel family.

    python3 scripts/gpu/kernel_profile.py train-prof.kernels.log

Each profiled launch is a line `| <duration> | <kernel name>`; a summary table (lines starting
with `|⎺`) is written at every device sync, so the first section is the warm-up step and the
second the timed steps. A step starts at the embedding lookup (`SelectKernel`)."""
import collections, re, sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}

def sections(path):
    out = [[]]
    for line in open(path, encoding="utf-8"):
        if line.startswith("|⎺"):
            out.append([])
        m = re.match(r"^\| ([\d.]+)(ns|µs|ms|s)\s*\| (.*)$", line)
        if m:
            out[-1].append((float(m.group(1)) * UNITS[m.group(2)], m.group(3).split(" | ")[0]))
    return [s for s in out if s]

def table(kernels, label):
    total = sum(d for d, _ in kernels)
    print(f"{label}: {total * 1e3:.1f} ms of GPU time in {len(kernels)} launches")
    families = collections.defaultdict(lambda: [0, 0.0])
    for d, name in kernels:
        families[name][0] += 1
        families[name][1] += d
    for name, (n, t) in sorted(families.items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"  {t * 1e3:8.1f} ms  {n:5d} x  {name}")

timed = sections(sys.argv[1])[1]
starts = [i for i, (_, name) in enumerate(timed) if name == "SelectKernel"]
# Each step has two lookups (input embedding, then the gradient's scatter target); the last
# full step runs from the second-to-last lookup to the end.
last = timed[starts[-2]:]
forward_end = starts[-1] - starts[-2]
table(last, "last timed step")
table(last[:forward_end], "  forward (embedding to the last layer)")
table(last[forward_end:], "  loss, backward and optimizer")
