#!/usr/bin/env python3
"""Tables and SVG plots for the side-by-side benchmarks (standard library only).

The shell scripts in benches/ run the load generator and append one JSON line per run
to a results file: {"workload", "title", "server", "run", "result"}, where "result" is
the load generator's own JSON line. This script reduces the runs to medians and prints
corecache / memcached ratios.

    report.py compare  DIR   # DIR/results.jsonl and DIR/meta.json -> table.txt, compare.svg
    report.py scaling  DIR   # -> scaling.txt, scaling.svg
    report.py memory   DIR   # -> memory.txt, memory.svg
    report.py hitratio DIR   # -> hitratio.txt, hitratio.svg
    report.py median   FILE WORKLOAD SERVER FIELD   # one median, for the scripts
"""

import json
import os
import statistics
import sys
from html import escape

SERVERS = ("memcached", "corecache")
HIGHER, LOWER = "higher", "lower"


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def field(result, name):
    """A dotted field of a result, None when absent."""
    value = result
    for part in name.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return None
        value = value[part]
    return value


def median_of(lines, workload, server, name):
    values = [field(l["result"], name) for l in lines if l["workload"] == workload and l["server"] == server]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def workloads(lines):
    """Workload ids in order of first appearance, with their titles."""
    seen = {}
    for line in lines:
        seen.setdefault(line["workload"], line.get("title", line["workload"]))
    return list(seen.items())


def ratio(cc, mc):
    return cc / mc if cc is not None and mc else None


def fmt(value, digits=0):
    if value is None:
        return "-"
    if isinstance(value, float) and digits == 0 and abs(value) < 100:
        digits = 2
    return f"{value:,.{digits}f}"


def table(header, rows):
    """Left-aligned first column, right-aligned others."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def loadavg_of(lines, workload):
    values = [l["result"]["loadavg"][0] for l in lines if l["workload"] == workload and "loadavg" in l["result"]]
    return statistics.median(values) if values else None


# compare ------------------------------------------------------------------------------


def compare_rows(lines):
    """(title, metric, goal, memcached, corecache, load) for every figure compared."""
    rows, cpu_rows = [], []
    for workload, title in workloads(lines):
        load_avg = loadavg_of(lines, workload)
        med = lambda name, w=workload: [median_of(lines, w, s, name) for s in SERVERS]
        if any(field(l["result"], "offered_rate") for l in lines if l["workload"] == workload):
            for pct, name in (("p50", "latency_us.p50"), ("p99", "latency_us.p99"), ("p99.9", "latency_us.p999")):
                rows.append((title, f"{pct} us", LOWER, *med(name), load_avg))
            continue
        unit = "req/s"
        if workload.startswith("c"):
            unit = "req/s (x20 keys)"
        rows.append((title, unit, HIGHER, *med("ops_per_s"), load_avg))
        cpu = med("server_cpu_us_per_request")
        if all(v is not None for v in cpu):
            cpu_rows.append((f"(f) server CPU per request, {title}", "us", LOWER, *cpu, load_avg))
    return rows + cpu_rows


def hit_warnings(lines):
    notes = []
    for workload, title in workloads(lines):
        for server in SERVERS:
            hit = median_of(lines, workload, server, "hit_ratio")
            if hit is not None and hit < 0.99:
                notes.append(f"note: {title} on {server}: hit ratio {hit:.3f} (keys evicted? raise -m)")
    return notes


def cmd_compare(out_dir):
    lines = load(os.path.join(out_dir, "results.jsonl"))
    meta = json.load(open(os.path.join(out_dir, "meta.json")))
    rows = compare_rows(lines)
    body = table(
        ["workload", "metric", "memcached", "corecache", "ratio", "better", "load"],
        [
            [t, m, fmt(mc, 1 if "us" in m else 0), fmt(cc, 1 if "us" in m else 0), fmt(ratio(cc, mc), 2),
             ">1" if g == HIGHER else "<1", fmt(la, 2)]
            for t, m, g, mc, cc, la in rows
        ],
    )
    note = (
        "ratio = corecache / memcached; 'better' says which side of 1 favours corecache; "
        "'load' is the median 1-minute load average at the end of the runs."
    )
    text = "\n".join([heading(meta), "", body, ""] + hit_warnings(lines) + [note, footer(meta)])
    emit(text, os.path.join(out_dir, "table.txt"))
    summary = [dict(zip(("workload", "metric", "goal", "memcached", "corecache", "load"), r)) for r in rows]
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"meta": meta, "rows": summary}, f, indent=1)
    bars = [(f"{t} {m}", g, mc, cc) for t, m, g, mc, cc, _ in rows]
    write_svg(os.path.join(out_dir, "compare.svg"), ratio_chart(title_of(meta), bars))


def heading(meta):
    first = (
        f"corecache / memcached {meta.get('memcached_version', '')}: -t {meta['threads']} -m {meta['memory']}, "
        f"{meta['cores']} cores"
    )
    if "duration" in meta:
        first += f", median of {meta['runs']} runs of {meta['duration']} s each, servers alternated"
    second = []
    if "keys" in meta:
        second.append(f"keys {meta['keys']}")
    if "value_size" in meta:
        second.append(f"values {meta['value_size']} bytes")
    if "client_threads" in meta:
        second.append(f"load generator threads {meta['client_threads']}")
    second.append(f"load average before {meta['load_before']}, after {meta.get('load_after', '?')}")
    return first + "\n" + ", ".join(second)


def footer(meta):
    return f"raw runs: {meta['dir']}/results.jsonl"


def title_of(meta):
    return f"corecache / memcached, -t {meta['threads']} -m {meta['memory']}, load {meta['load_before']}"


# scaling ------------------------------------------------------------------------------


def cmd_scaling(out_dir):
    lines = load(os.path.join(out_dir, "results.jsonl"))
    meta = json.load(open(os.path.join(out_dir, "meta.json")))
    rows, series = [], {}
    for workload, title in workloads(lines):
        base_w, workers = workload.rsplit("@", 1)
        workers = int(workers)
        mc, cc = (median_of(lines, workload, s, "ops_per_s") for s in SERVERS)
        series.setdefault(base_w, {"title": title.rsplit(",", 1)[0], "points": []})["points"].append((workers, mc, cc))
    for base_w, s in series.items():
        one = {w: (mc, cc) for w, mc, cc in s["points"]}.get(1)
        for workers, mc, cc in s["points"]:
            eff = lambda v, i: v / (workers * one[i]) if one and one[i] and v else None
            rows.append([s["title"], workers, fmt(mc), fmt(cc), fmt(ratio(cc, mc), 2), fmt(eff(mc, 0), 2), fmt(eff(cc, 1), 2)])
    body = table(["workload", "workers", "memcached", "corecache", "ratio", "mc of linear", "cc of linear"], rows)
    note = "'of linear' = req/s at N workers / (N x req/s at 1 worker); the load generator shares the machine."
    text = "\n".join([heading(meta), "", body, "", note, footer(meta)])
    emit(text, os.path.join(out_dir, "scaling.txt"))
    write_svg(os.path.join(out_dir, "scaling.svg"), scaling_chart(title_of(meta), series))


# memory -------------------------------------------------------------------------------


def cmd_memory(out_dir):
    lines = load(os.path.join(out_dir, "results.jsonl"))
    meta = json.load(open(os.path.join(out_dir, "meta.json")))
    rows, bars = [], []
    for workload, title in workloads(lines):
        r = {s: next((l["result"] for l in lines if l["workload"] == workload and l["server"] == s), None) for s in SERVERS}
        if not all(r.values()):
            continue
        mc, cc = r["memcached"], r["corecache"]
        per_item = lambda x, extra: (x["limit_maxbytes"] + extra - x["payload_bytes"]) / x["items_held"]
        rss = lambda x: x["server_rss_bytes"] / x["items_held"] if x.get("server_rss_bytes") else None
        items_ratio = ratio(cc["items_held"], mc["items_held"])
        rows.append([
            title, fmt(mc["items_held"]), fmt(cc["items_held"]), fmt(items_ratio, 2),
            fmt(per_item(mc, 0), 1), fmt(per_item(mc, mc["hash_bytes"]), 1), fmt(per_item(cc, cc["hash_bytes"]), 1),
            f"{mc['hash_bytes'] >> 10}/{cc['hash_bytes'] >> 10}", fmt(rss(mc), 1), fmt(rss(cc), 1),
        ])
        bars.append((f"{title}: items held", HIGHER, mc["items_held"], cc["items_held"]))
    body = table(
        ["values", "mc items", "cc items", "ratio", "mc ovh", "mc ovh+hash", "cc ovh+index", "hash KiB mc/cc",
         "mc RSS/item", "cc RSS/item"],
        rows,
    )
    notes = (
        "Items held: keys still there when the first eviction was seen, counted key by key with `mg <key> s`.\n"
        "Overhead per item, in bytes: (budget - bytes of keys and values held) / items held.\n"
        "  mc ovh: budget = -m. memcached's hash table is allocated outside -m, so this leaves it out;\n"
        "  mc ovh+hash: budget = -m + memcached's hash_bytes (what memcached really spends);\n"
        "  cc ovh+index: budget = -m + corecache's hash_bytes (its index, counted against it).\n"
        "RSS/item: the server's resident memory / items held (includes code, buffers, the hash table)."
    )
    text = "\n".join([heading(meta), "", body, "", notes, footer(meta)])
    emit(text, os.path.join(out_dir, "memory.txt"))
    write_svg(os.path.join(out_dir, "memory.svg"), ratio_chart(title_of(meta) + ", items held", bars))


# hit ratio ----------------------------------------------------------------------------


def cmd_hitratio(out_dir):
    lines = load(os.path.join(out_dir, "results.jsonl"))
    meta = json.load(open(os.path.join(out_dir, "meta.json")))
    rows, bars = [], []
    for workload, title in workloads(lines):
        mc, cc = (median_of(lines, workload, s, "miss_ratio") for s in SERVERS)
        mc_rep, cc_rep = (median_of(lines, workload, s, "repeat_miss_ratio") for s in SERVERS)
        r, r_rep = ratio(cc, mc), ratio(cc_rep, mc_rep)
        fewer = f"{(1 - r) * 100:.1f}%" if r is not None else "-"
        rows.append([title, fmt(mc, 4), fmt(cc, 4), fmt(r, 3), fewer, fmt(mc_rep, 4), fmt(cc_rep, 4), fmt(r_rep, 3),
                     fmt(loadavg_of(lines, workload), 2)])
        bars.append((f"{title}: miss ratio", LOWER, mc, cc))
        bars.append((f"{title}: repeat-miss ratio", LOWER, mc_rep, cc_rep))
    body = table(
        ["workload", "mc misses", "cc misses", "ratio", "cc fewer", "mc repeat", "cc repeat", "ratio", "load"], rows
    )
    note = (
        "Misses / gets in the measured phase, after an unmeasured warm-up as long. Each miss is followed by a\n"
        "set of the key (cache-aside). 'repeat' counts only misses on keys asked for before (in either phase):\n"
        "the first request for a key misses in any cache, and with the same seed both servers see the same ones."
    )
    text = "\n".join([heading(meta), "", body, "", note, footer(meta)])
    emit(text, os.path.join(out_dir, "hitratio.txt"))
    write_svg(os.path.join(out_dir, "hitratio.svg"), ratio_chart(title_of(meta) + ", Zipf misses", bars))


# SVG ----------------------------------------------------------------------------------


def ratio_chart(title, bars):
    """Horizontal bars of corecache / memcached, a line at 1; green where corecache is
    better, red where it is worse."""
    label_w = 20 + 7 * max([len(label) for label, *_ in bars] + [10])
    bar_w, row_h, top = 360, 24, 60
    top_ratio = max([2.0] + [ratio(cc, mc) or 0 for _, _, mc, cc in bars])
    x_of = lambda r: label_w + bar_w * r / top_ratio
    height = top + row_h * len(bars) + 40
    one = x_of(1.0)
    parts = [
        text_el(10, 24, title, size=15, weight="bold"),
        text_el(10, 44, "bars: corecache / memcached; green where corecache is better, red where worse"),
        f'<line x1="{one:.1f}" y1="{top - 6}" x2="{one:.1f}" y2="{height - 30}" stroke="#222" stroke-dasharray="4 3"/>',
        text_el(one, height - 14, "1.0 = same as memcached", anchor="middle"),
    ]
    for i, (label, goal, mc, cc) in enumerate(bars):
        y = top + i * row_h
        r = ratio(cc, mc)
        parts.append(text_el(label_w - 8, y + 16, label, anchor="end"))
        if r is None:
            continue
        good = (r >= 1) == (goal == HIGHER)
        color = "#3a9a5b" if good else "#c8553d"
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{x_of(r) - label_w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        parts.append(text_el(x_of(r) + 6, y + 16, f"{r:.2f}x  (mc {fmt(mc)}, cc {fmt(cc)})"))
    return svg(label_w + bar_w + 320, height, parts)


def scaling_chart(title, series):
    """One panel per workload: req/s against workers, memcached and corecache."""
    panel_w, panel_h, pad = 420, 280, 60
    parts = [text_el(10, 24, title + ", scaling", size=15, weight="bold")]
    for n, (name, s) in enumerate(series.items()):
        x0, y0 = pad + n * (panel_w + pad), 50
        pts = s["points"]
        top = max([v for _, mc, cc in pts for v in (mc, cc) if v] + [1])
        xs = sorted({w for w, _, _ in pts})
        x_of = lambda w: x0 + panel_w * (xs.index(w) / max(1, len(xs) - 1))
        y_of = lambda v: y0 + panel_h - panel_h * v / top
        parts.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#999"/>')
        parts.append(text_el(x0, y0 - 8, s["title"], weight="bold"))
        parts.append(text_el(x0 - 6, y0 + 10, fmt(top), anchor="end"))
        for w in xs:
            parts.append(text_el(x_of(w), y0 + panel_h + 16, str(w), anchor="middle"))
        parts.append(text_el(x0 + panel_w / 2, y0 + panel_h + 34, "workers (-t)", anchor="middle"))
        for i, (server, color) in enumerate((("memcached", "#c8553d"), ("corecache", "#3a6ea5"))):
            coords = [(x_of(w), y_of(v[i])) for w, *v in pts if v[i]]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts.append(text_el(x0 + 8, y0 + 18 + 16 * i, server, color=color))
    return svg(pad + len(series) * (panel_w + pad), 50 + panel_h + 60, parts)


def text_el(x, y, content, size=12, anchor="start", weight="normal", color="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{color}">{escape(str(content))}</text>')


def svg(width, height, parts):
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>')
    return "\n".join([head] + parts + ["</svg>", ""])


def write_svg(path, content):
    with open(path, "w") as f:
        f.write(content)
    print(f"plot: {path}")


def emit(text, path):
    print(text)
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"table: {path}")


def main(argv):
    commands = {"compare": cmd_compare, "scaling": cmd_scaling, "memory": cmd_memory, "hitratio": cmd_hitratio}
    if len(argv) == 6 and argv[1] == "median":
        value = median_of(load(argv[2]), argv[3], argv[4], argv[5])
        print("" if value is None else value)
        return 0
    if len(argv) == 3 and argv[1] in commands:
        commands[argv[1]](argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
