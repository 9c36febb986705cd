#!/usr/bin/env python3
"""How far recursive self-aggregation's populations drift from the trace format a combination
aggregator was trained on, round by round.

`data` writes combination problems as the JSONL `spiral-eval` reads; `formats` reads the
populations `spiral-eval rsa --traces` wrote for them and prints, per round, pass@1 and the share
of traces with each departure from the warm start's trial-trace format (one line per part, in
order, each at most `--tries` tries of the part's own congruence, with no value tried twice and
ending in the part's answer):

    python3 scripts/rsa_formats.py data --out /tmp/comb.jsonl
    spiral-eval rsa --model RUN/checkpoints/warm-start --data /tmp/comb.jsonl --task combination \
        --population 8 --k 4 --rounds 4 --max-new-tokens 120 --seed 1 --traces /tmp/rsa.jsonl
    python3 scripts/rsa_formats.py formats --data /tmp/comb.jsonl --traces /tmp/rsa.jsonl

Standard library only.
"""

import argparse
import collections
import json
import math
import random
import re

# One try, `a*x+b=value=residue:wanted`, and a line's closing answer `x<i>=<x>`.
TRY = re.compile(r"(\d+)\*(\d+)\+(\d+)=(\d+)=(\d+):(\d+)")
ANSWER = re.compile(r"x(\d+)=(\d+)\s*$")
CONGRUENCE = re.compile(r"(\d+)x\+(\d+)=(\d+) \(mod (\d+)\)")


def make_data(args):
    rng = random.Random(args.seed)
    units = [a for a in range(1, args.modulus) if math.gcd(a, args.modulus) == 1]
    with open(args.out, "w") as out:
        for i in range(args.problems):
            lines, answers = [], []
            for _ in range(args.parts):
                a, b, c = rng.choice(units), rng.randrange(args.modulus), rng.randrange(args.modulus)
                answers.append(next(x for x in range(args.modulus) if (a * x + b) % args.modulus == c))
                lines.append(f"{a}x+{b}={c} (mod {args.modulus})")
            out.write(json.dumps({"id": str(i), "problem": "\n".join(lines), "answer": answers}) + "\n")


def departures(text, parts, tries, max_tokens, tokens):
    """The ways one trace leaves the trained format (a set of names; empty when it keeps it)."""
    lines = [line for line in text.split("\n") if line.strip()]
    found = set()
    if tokens >= max_tokens and not (lines and ANSWER.search(lines[-1])):
        found.add("truncated")
    named = []
    for line in lines:
        answer = ANSWER.search(line)
        attempts = TRY.findall(line)
        if answer:
            named.append(int(answer.group(1)))
        if len(attempts) > tries:
            found.add("over")
        values = [t[1] for t in attempts]
        if len(set(values)) < len(values):
            found.add("repeats")
        if answer and 1 <= int(answer.group(1)) <= len(parts):
            a, b, c = parts[int(answer.group(1)) - 1]
            if any((int(t[0]), int(t[2]), int(t[5])) != (a, b, c) for t in attempts):
                found.add("other_part")
    if named != list(range(1, len(parts) + 1)) or len(lines) != len(parts):
        found.add("missing")
    return found


def formats(args):
    parts = {}
    with open(args.data) as f:
        for line in f:
            row = json.loads(line)
            parts[row["id"]] = [tuple(map(int, m.groups()[:3])) for m in CONGRUENCE.finditer(row["problem"])]
    rounds = collections.defaultdict(collections.Counter)
    with open(args.traces) as f:
        for line in f:
            row = json.loads(line)
            counts = rounds[row["round"]]
            for m in row["members"]:
                counts["traces"] += 1
                counts["reward"] += m["reward"]
                found = departures(m["text"], parts[row["id"]], args.tries, args.max_new_tokens, m["tokens"])
                counts["in_format"] += not found
                counts.update(found)
    columns = [
        ("in_format", "in the trained format"),
        ("truncated", "cut off at the token limit"),
        ("missing", "not one answer line per part, in order"),
        ("over", f"more than {args.tries} tries on a line"),
        ("repeats", "a value tried twice on a line"),
        ("other_part", "a try of another part's congruence"),
    ]
    print("| round | pass@1 | " + " | ".join(name for _, name in columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for r in sorted(rounds):
        c = rounds[r]
        n = c["traces"]
        cells = [f"{c[key] / n:.3f}" for key, _ in columns]
        print(f"| {r} | {c['reward'] / n:.3f} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write combination problems as JSONL")
    data.add_argument("--out", required=True)
    data.add_argument("--problems", type=int, default=100)
    data.add_argument("--parts", type=int, default=2)
    data.add_argument("--modulus", type=int, default=10)
    data.add_argument("--seed", type=int, default=7)
    data.set_defaults(run=make_data)
    table = sub.add_parser("formats", help="the format table of an RSA traces file")
    table.add_argument("--data", required=True)
    table.add_argument("--traces", required=True)
    table.add_argument("--tries", type=int, default=4)
    table.add_argument("--max-new-tokens", type=int, default=120)
    table.set_defaults(run=formats)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
