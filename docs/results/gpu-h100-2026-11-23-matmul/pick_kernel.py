"""Prints the kernel with the least matmul time per step over the products every kernel got
through in matmul-kernels' log (argv[1]); kernels that fell back, erred or panicked are out."""
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"product"')]
kernels = {r["kernel"] for r in rows}
bad = {r["kernel"] for r in rows if r.get("panicked") or r.get("fell_back") or r.get("relative_error", 0) > 0.05}
seen = collections.defaultdict(set)
for r in rows:
    seen[(r["product"], r["pass"])].add(r["kernel"])
complete = {p for p, ks in seen.items() if ks == kernels}
total = collections.Counter()
for r in rows:
    if (r["product"], r["pass"]) in complete and "ms" in r:
        total[r["kernel"]] += r["ms"] * r["per_step"]
ranked = sorted((t, k) for k, t in total.items() if k not in bad)
for t, k in ranked:
    print(f"# {k}: {t:.1f} ms over {len(complete)} products", file=sys.stderr)
print(f"# excluded: {sorted(bad)}", file=sys.stderr)
print(ranked[0][1] if ranked else "burn")
