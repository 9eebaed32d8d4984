#!/usr/bin/env python3
"""Draws the scale run's curve (bench/scale-run.sh): events in the store -> p99 latency of a
timeline page (32 clients) and of a durable write (1 client), with the server's RSS on a second
axis. Usage: plot_scale.py scale.json scale.png. Installs matplotlib for the user if missing."""
import json
import subprocess
import sys

try:
    import matplotlib
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--user", "-q", "matplotlib"])
    import site, importlib
    importlib.reload(site)
    import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def op(report, name):
    for o in report["ops"]:
        if o["op"] == name:
            return o
    return report["ops"][0]


def main(src, dst):
    rows = sorted(json.load(open(src)), key=lambda r: r["events"])
    events = [r["events"] for r in rows]
    page = [op(r["timeline"], "timeline page") for r in rows]
    write_ops = [op(r["write"], "record interaction") for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    ax.plot(events, [p["p99_ms"] for p in page], "o-", label="timeline page p99 (32 clients)")
    ax.plot(events, [p["p50_ms"] for p in page], "o--", label="timeline page p50 (32 clients)")
    ax.plot(events, [w["p99_ms"] for w in write_ops], "s-", label=f"{write_ops[0]['op']} p99 (1 client)")
    ax.plot(events, [w["p50_ms"] for w in write_ops], "s--", label=f"{write_ops[0]['op']} p50 (1 client)")
    ax.set_xscale("log")
    ax.set_xlabel("events in the store")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    rss = ax.twinx()
    rss.plot(events, [r["rss_end_kib"] / 1024 for r in rows], "^:", color="grey", label="server RSS")
    rss.set_ylabel("server RSS (MiB)")
    rss.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = rss.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title("sijil: latency and memory vs store size (2-core machine)")
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
