"""bench/report.py: the Markdown report of bench/run.sh.

Usage: report.py RUNS.TSV key=value...

RUNS.TSV has one line per run: label, round, wall s, user s, sys s, peak RSS
KiB, valid (1/0), and a count (drain: payload bytes; nta-run: results out).
Each figure is the median over the rounds of that label, taken per column.
Prints the report on stdout; exits 3 when a bar is missed, 1 when a run is
missing or invalid, else 0.
"""
import os
import platform
import statistics
import sys
import time

BAR_RATIO = 0.6
BAR_RATE = 1_000_000


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_gib():
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return "%.0f GiB" % (kib / 2**20)
    except (OSError, ValueError, IndexError):
        return "unknown memory"


def main():
    path = sys.argv[1]
    opt = dict(a.split("=", 1) for a in sys.argv[2:])
    n = int(opt["records"])
    runs = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 8:
            continue
        label, rnd, wall, user, sys_, rss, valid, count = f
        runs.setdefault(label, []).append({
            "wall": float(wall), "cpu": float(user) + float(sys_), "user": float(user),
            "sys": float(sys_), "rss": int(rss), "valid": valid == "1", "count": int(count),
        })

    def med(label, key):
        return statistics.median(r[key] for r in runs[label])

    def row(name, label, base=None):
        wall, cpu, rss = med(label, "wall"), med(label, "cpu"), med(label, "rss")
        rate = n / wall
        cells = [name, "%d" % len(runs[label]), "%.2f" % wall, "{:,.0f}".format(rate),
                 "%.2f" % cpu, "%.2f" % (cpu / n * 1e6), "%.0f" % (rss / 1024)]
        if base is None:
            cells.append("1.00 (baseline)")
        else:
            cells.append("%.2f" % (rate / (n / med(base, "wall"))))
        return "| " + " | ".join(cells) + " |"

    ok = all(r["valid"] for rs in runs.values() for r in rs) and "drain" in runs and "nta" in runs
    out = []
    p = out.append
    p("### nta-run throughput, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    p("")
    avg = statistics.median(r["count"] for r in runs.get("drain", [])) / n if "drain" in runs else 0
    p("Machine: %d cores (%s), %s; %s. librdkafka %s, Kafka %s (tools/kafka-local, on the same "
      "machine). nta %s." % (os.cpu_count() or 0, cpu_model(), mem_gib(), platform.platform(),
                              opt.get("rdkafka", "?"), opt.get("kafka", "?"), opt.get("rev", "?")))
    p("")
    p("Input: %s JSON records (scripts/gen_traffic.lua, start=1700000000000, rate=100000: %.0f s "
      "of event time), average payload %.1f bytes, 3 partitions; preloaded in %s s. "
      "Each figure is the median of %s runs, alternating a b a b ...; wall time is the whole "
      "process (start, group join, drain, and for nta-run the end-of-input flush of every "
      "window, result delivery and offset commit)."
      % ("{:,}".format(n), n / 100000, avg, opt.get("gen_wall", "?"), opt.get("repeat", "?")))
    if opt.get("props"):
        p("")
        p("librdkafka properties given to both sides (BENCH_X): `%s`." % opt["props"])
    p("")
    p("| run | runs | wall s | records/s | CPU s (user+sys) | CPU µs/record | peak RSS MiB | vs drain |")
    p("|---|---|---|---|---|---|---|---|")
    if "drain" in runs:
        p(row("(a) drain (bench/drain.c)", "drain"))
    if "nta" in runs and "drain" in runs:
        p(row("(b) nta-run, 5 windows (bench/pipeline5.lua)", "nta", "drain"))
    if "nta-rules" in runs and "drain" in runs:
        p(row("(c) nta-run, + top-k, quantiles, detection windows, all rules "
              "(bench/pipeline_rules.lua)", "nta-rules", "drain"))
    diag = "drain-diag" in runs and "nta-diag" in runs
    if diag:
        p(row("(a') drain, diagnostic properties", "drain-diag", "drain"))
        p(row("(b') nta-run, diagnostic properties", "nta-diag", "drain"))
    p("")

    missed = False
    if "drain" in runs and "nta" in runs:
        ra, rb = n / med("drain", "wall"), n / med("nta", "wall")
        ratio = rb / ra
        missed = ratio < BAR_RATIO or rb < BAR_RATE
        p("- **b/a = %.2f** (bar: >= %.1f): %s" % (ratio, BAR_RATIO,
                                                   "holds" if ratio >= BAR_RATIO else "**missed**"))
        p("- **b = {:,.0f} records/s** (bar: >= {:,}): {}".format(
            rb, BAR_RATE, "holds" if rb >= BAR_RATE else "**missed**"))
        p("- CPU per record, b/a: %.1fx" % (med("nta", "cpu") / med("drain", "cpu")))
        results = sorted({r["count"] for r in runs["nta"]})
        p("- nta-run: every run %s records in and aggregated, 0 bad, 0 late, %s results, "
          "all in the output topic" % ("{:,}".format(n),
                                       " / ".join("{:,}".format(x) for x in results)))
    if "drain" in runs and "nta-rules" in runs:
        rc = n / med("nta-rules", "wall") / (n / med("drain", "wall"))
        p("- **c/a = %.2f** (issue 3 bar: >= 0.5): %s" % (rc, "holds" if rc >= 0.5 else "**missed**"))
    if diag:
        rd, rnd = n / med("drain-diag", "wall"), n / med("nta-diag", "wall")
        p("- diagnostic (`{}`, both sides): b'/a' = {:.2f}, b' = {:,.0f} records/s".format(
            opt.get("diag", ""), rnd / rd, rnd))
    p("")
    p("Each run (wall s / CPU s / peak RSS MiB):")
    p("")
    p("| run | " + " | ".join("round %d" % (i + 1) for i in range(max(len(v) for v in runs.values())))
      + " |")
    p("|---|" + "---|" * max(len(v) for v in runs.values()))
    for label, rs in runs.items():
        cells = ["%.2f / %.2f / %.0f%s" % (r["wall"], r["cpu"], r["rss"] / 1024,
                                            "" if r["valid"] else " (INVALID)") for r in rs]
        p("| %s | %s |" % (label, " | ".join(cells)))
    print("\n".join(out))
    if not ok:
        return 1
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
