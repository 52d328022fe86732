#!/usr/bin/env python3
"""Bar charts (SVG, gnuplot) of the ratios in scripts/bench's JSON files.

  bench/charts.py RESULTS_DIR OUT_DIR

Writes OUT_DIR/tasks.svg (corral / Python, from throughput.json, the
comparisons with the same function on both sides) and
OUT_DIR/supervision.svg (supervisord / corral, from supervision.json): how
many times corral is ahead, on a log scale, one bar per comparison.
"""
import json
import os
import subprocess
import sys
import tempfile


def chart(rows, title, ylabel, out):
    """ROWS: (label, ratio) pairs -> a horizontal-label bar chart at OUT."""
    # Bars below 1x (corral behind) must show too: the axis reaches under the lowest.
    low = min([0.5] + [ratio / 2 for _, ratio in rows if ratio > 0])
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        with open(data, "w") as f:
            for label, ratio in rows:
                f.write(f'"{label}" {ratio:.4f}\n')
        script = f'''
set terminal svg size 900,560 dynamic font "sans,12"
set output "{out}"
set title "{title}"
set style fill solid 0.8 border -1
set boxwidth 0.6
set logscale y 10
set yrange [{low:.4g}:*]
set ylabel "{ylabel}"
set grid ytics
set xtics rotate by -30 left
unset key
plot "{data}" using 0:2:xtic(1) with boxes lc rgb "#3b7dd8", \\
     "" using 0:2:(sprintf("%.1fx", $2)) with labels offset 0,0.7 notitle, \\
     1 with lines lc rgb "#888888" dt 2 notitle
'''
        subprocess.run(["gnuplot"], input=script.encode(), check=True)


def main():
    results, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    throughput = os.path.join(results, "throughput.json")
    if os.path.exists(throughput):
        rows = []
        for c in json.load(open(throughput))["comparisons"]:
            # The main line only: the same O(1) function on both sides (the
            # 50-iteration loop line, C++ against Python, is in the tables).
            if c.get("task") == "loop":
                continue
            if "lower is better" in c["figure"]:
                rows.append((c["figure"].split(" (")[0], 1 / c["ratio"]))
            else:
                rows.append((c["figure"].replace("(N/20)", "").strip(), c["ratio"]))
        chart(rows, "corral against Python multiprocessing, same tasks, one run",
              "times corral is ahead (log)", os.path.join(out, "tasks.svg"))
    supervision = os.path.join(results, "supervision.json")
    if os.path.exists(supervision):
        rows = [(r["figure"], r["ratio"]) for r in json.load(open(supervision))
                if "ratio" in r and r["ratio"] not in (float("inf"),) and r["ratio"] > 0]
        chart(rows, "corral against supervisord, same programs, one run",
              "times corral is ahead (log)", os.path.join(out, "supervision.svg"))


if __name__ == "__main__":
    main()
