#!/usr/bin/env python3
"""Writes docs/bench-delay.md (to stdout) from the results scripts/bench-delay.sh collected.

Usage: report.py --load-start L --load-end L HOST_DIR [HOST_NO_FSYNC_DIR] VM_DIR

Each DIR holds `machine` (kernel, load, cpus), `status` (failures, if any) and `results/`, an
`orch run` results store. Per run it reads `run.json` (its matrix cell), `delays.json` (the
delays' certificate: declared against realised round trips per pair) and `ycsb-run.txt` (YCSB's 1 ms histogram per operation, from
`measurementtype=histogram` with `measurement.histogram.verbose=true`).
"""

import argparse
import glob
import json
import os
import sys


def runs(store):
    """The run directories of the newest run of each scenario in `store`, in label order."""
    out = []
    for scenario in sorted(glob.glob(os.path.join(store, "*", ""))):
        ids = sorted(d for d in glob.glob(os.path.join(scenario, "2*", "")))
        if ids:
            out += sorted(glob.glob(os.path.join(ids[-1], "r*", "")))
    return out


def histogram(path, op):
    """{ms bucket: count} and the overflow of `op` in a YCSB histogram output, or None."""
    buckets, overflow, seen = {}, 0, False
    with open(path) as f:
        for line in f:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3 or parts[0] != f"[{op}]":
                continue
            seen = True
            if parts[1].isdigit():
                buckets[int(parts[1])] = int(parts[2])
            elif parts[1] == ">1000":
                overflow = int(parts[2])
    return (buckets, overflow) if seen else None


def stats(hist):
    """count, min, p50, p90, p99, max (ms, 1 ms buckets: a bucket b holds [b, b+1) ms)."""
    buckets, overflow = hist
    n = sum(buckets.values()) + overflow
    if n == 0:
        return None
    order = sorted(b for b, c in buckets.items() if c > 0)

    def pct(p):
        need, seen = p / 100 * n, 0
        for b in order:
            seen += buckets[b]
            if seen >= need:
                return b
        return float("inf")

    return {"n": n, "min": order[0], "p50": pct(50), "p90": pct(90), "p99": pct(99),
            "max": order[-1] if not overflow else float("inf")}


def delay_errors(run):
    """(pairs, mean |realised - declared| median round trip, max |...|, worst pair) of a run's
    delays.json: the certificate's p50 check, whose declared value is the model's median (the
    declared delays on the pair's base round trip)."""
    path = os.path.join(run, "delays.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        pairs = json.load(f)["pairs"]
    errs = []
    for p in pairs:
        p50 = next((c for c in p["checks"] if c["stat"] == "p50"), None)
        if p50 is None:
            continue
        errs.append((abs(p50["realised_ms"] - p50["declared_ms"]), f'{p["from"]}-{p["to"]}'))
    if not errs:
        return None
    worst = max(errs)
    return len(errs), sum(e for e, _ in errs) / len(errs), worst[0], worst[1]


def cell(run):
    """The run's matrix cell (`delays=netem`) and its failure, if any. A run without run.json
    stopped before its end (orch run's output says why)."""
    path = os.path.join(run, "run.json")
    if not os.path.exists(path):
        label = os.path.basename(run.rstrip("/"))
        name = label.split("-", 1)[1].rsplit("-rep", 1)[0]
        why = REASONS.get(label, "stopped before the end (no run.json; see orch run's output)")
        d = os.path.join(run, "delays.json")
        if os.path.exists(d) and not all(p["ok"] for p in json.load(open(d))["pairs"]):
            why = "stopped: the delays were not certified (delays.txt)"
        return name, why
    with open(path) as f:
        r = json.load(f)
    return ", ".join(f"{k}={v}" for k, v in r["matrix"]) or r["label"], r.get("failure")


# Why a run failed, by label, from orch run's output (`error: run LABEL failed: REASON`).
REASONS = {}


def read_reasons(d):
    for name in ("run.log", "guest.log"):
        path = os.path.join(d, name)
        if not os.path.exists(path):
            continue
        for line in open(path, errors="replace"):
            if line.startswith("error: run ") and " failed: " in line:
                label, why = line[len("error: run "):].split(" failed: ", 1)
                REASONS[label] = why.strip().rstrip(":")


def merged(hists):
    """One histogram of several runs' histograms."""
    buckets, overflow = {}, 0
    for b, o in hists:
        for k, v in b.items():
            buckets[k] = buckets.get(k, 0) + v
        overflow += o
    return buckets, overflow


def rows(store):
    """One row per matrix cell, its repetitions pooled: histograms merged, delay errors
    averaged over every pair of every repetition (the worst pair of all)."""
    cells = {}
    for run in runs(store):
        name, failure = cell(run)
        c = cells.setdefault(name, {"runs": 0, "failures": [], "UPDATE": [], "READ": [], "delays": []})
        c["runs"] += 1
        if failure:
            if failure.split("\n")[0] not in c["failures"]:
                c["failures"].append(failure.split("\n")[0])
            c["failed"] = c.get("failed", 0) + 1
        ycsb = os.path.join(run, "ycsb-run.txt")
        for op in ("UPDATE", "READ"):
            h = histogram(ycsb, op) if os.path.exists(ycsb) else None
            if h:
                c[op].append(h)
        d = delay_errors(run)
        if d:
            c["delays"].append(d)
    out = []
    for name, c in cells.items():
        d = c["delays"]
        pooled = None
        if d:
            pairs = sum(x[0] for x in d)
            pooled = (pairs, sum(x[1] * x[0] for x in d) / pairs, *max((x[2], x[3]) for x in d))
        out.append({"cell": name, "runs": c["runs"], "failed": c.get("failed", 0), "failure": "; ".join(c["failures"]),
                    "update": stats(merged(c["UPDATE"])) if c["UPDATE"] else None,
                    "read": stats(merged(c["READ"])) if c["READ"] else None,
                    "delays": pooled})
    return out


def machine(d):
    path = os.path.join(d, "machine")
    return open(path).read().strip().replace("\n", "; ") if os.path.exists(path) else "?"


def problems(d):
    path = os.path.join(d, "status")
    return open(path).read().strip() if os.path.exists(path) else ""


def ms(v):
    return "-" if v is None else ("> 1000" if v == float("inf") else f"{v}")


def table(rs):
    lines = ["| cell | runs | pairs | delay error mean / max (worst pair) | UPDATE n | min | p50 | p90 | p99 | max | p99 / p50 | p99 - min | READ p50 / p99 | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        u, d, rd = r["update"], r["delays"], r["read"]
        derr = f"{d[1]:.2f} / {d[2]:.2f} ms ({d[3]})" if d else "-"
        pairs = str(d[0]) if d else "-"
        if u:
            ratio = f"{u['p99'] / u['p50']:.2f}" if u["p50"] else "-"
            ycsb = [str(u["n"]), ms(u["min"]), ms(u["p50"]), ms(u["p90"]), ms(u["p99"]),
                    ms(u["max"]), ratio, ms(u["p99"] - u["min"])]
        else:
            ycsb = ["-"] * 8
        reads = f"{ms(rd['p50'])} / {ms(rd['p99'])}" if rd else "-"
        status = "failed: " + r["failure"] if r["failure"] else "ok"
        runs = f'{r["runs"]} ({r["failed"]} failed)' if r["failed"] else str(r["runs"])
        lines.append("| " + " | ".join([r["cell"], runs, pairs, derr] + ycsb + [reads, status]) + " |")
    return "\n".join(lines)


def find(rs, name):
    return next((r for r in rs if r["cell"] == f"delays={name}" and r["update"]), None)


def reading(host, nosync, vm):
    """Sentences computed from the numbers: where the tail is, by comparison of cells."""
    out = []
    none, fixed, jit = find(host, "none"), find(host, "emulator-no-jitter"), find(host, "emulator")
    if none and fixed:
        out.append(
            f"- With no delays at all, UPDATE's p99 is {none['update']['p99']} ms against a p50 of "
            f"{none['update']['p50']} ms: the tail exists before any delay is added. With the "
            f"declared delays and no jitter, the fastest UPDATE takes {fixed['update']['min']} ms "
            f"(the floor the delays set: a getData and a setData, see above) and the p99 is "
            f"{fixed['update']['p99'] - fixed['update']['min']} ms above that floor.")
    if jit and fixed:
        out.append(
            f"- Declared jitter moves the p99 from {fixed['update']['p99']} ms (none) to "
            f"{jit['update']['p99']} ms (±5 ms normal).")
    nnone = find(nosync, "none") if nosync else None
    nfixed = find(nosync, "emulator-no-jitter") if nosync else None
    if none and nnone:
        out.append(
            f"- Without fsync (`forceSync=no`), the no-delay UPDATE p50 / p99 is "
            f"{nnone['update']['p50']} / {nnone['update']['p99']} ms, against "
            f"{none['update']['p50']} / {none['update']['p99']} ms with it.")
    if fixed and nfixed:
        with_fsync = fixed["update"]["p99"] - fixed["update"]["min"]
        without = nfixed["update"]["p99"] - nfixed["update"]["min"]
        share = f"{100 * (with_fsync - without) / with_fsync:.0f} %" if with_fsync > 0 else "-"
        out.append(
            f"- With the fixed delays and no fsync, the p99 is {without} ms above the floor, "
            f"against {with_fsync} ms with fsync: the transaction log's fsync makes {share} of "
            f"the tail above the floor here (every write is fsynced by the leader and by each "
            f"follower before it acknowledges, all five servers on this machine's one disk). The "
            f"delays' own error is {fixed['delays'][1]:.2f} ms on average (worst pair "
            f"{fixed['delays'][2]:.2f} ms)"
            + (": small against the tail, so the tail does not come from the delays."
               if fixed["delays"][2] * 5 < with_fsync else ", a part of the tail."))
    for kind in ["no-jitter", None]:
        suffix = f"-{kind}" if kind else ""
        n, e = find(vm, f"netem{suffix}"), find(vm, f"emulator{suffix}")
        if n and e:
            out.append(
                f"- In the VM, {'without' if kind else 'with'} jitter: netem gives UPDATE p50 / "
                f"p99 {n['update']['p50']} / {n['update']['p99']} ms, the emulator "
                f"{e['update']['p50']} / {e['update']['p99']} ms; delay error (median vs "
                f"declared RTT, mean over pairs) {n['delays'][1]:.2f} ms with netem, "
                f"{e['delays'][1]:.2f} ms with the emulator.")
    failed = [r for r in vm if r["failure"]]
    if failed:
        out.append(
            f"- In the VM, {sum(r['failed'] for r in failed)} of {sum(r['runs'] for r in vm)} "
            f"runs did not finish (the table says why), so netem and the emulator are compared "
            f"only where both finished.")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--load-start", required=True)
    ap.add_argument("--load-end", required=True)
    ap.add_argument("host")
    ap.add_argument("nosync")
    ap.add_argument("vm")
    a = ap.parse_args()
    for d in (a.host, a.nosync, a.vm):
        read_reasons(d)
    host, nosync, vm = (rows(os.path.join(d, "results")) for d in (a.host, a.nosync, a.vm))
    print(f"""# Benchmark: delays by netem and by orch-node's emulator, and the YCSB tail

Written by `sudo scripts/bench-delay.sh` (scripts/bench-delay/report.py). Load average of this
machine at the start: {a.load_start}; at the end: {a.load_end}. All runs use the shipped lab
scenario's ZooKeeper ensemble, traffic and YCSB workload (scenarios/zk-leader-placement-lab.yaml:
5 servers, leader host3, client host1 connected to the leader, 1 thread, 300 operations, 90 %
updates), with YCSB's 1 ms histogram of every operation; percentiles below are read off that
histogram (1 ms resolution). "delay error" is, per host pair, |measured - declared| round trip
(orch's own check after applying the delays: the median of the pings, or the mean for pareto
jitter), averaged over the pairs and its worst pair. A cell's repetitions are pooled: their
histograms merged, their pairs averaged together.

An UPDATE of orch-node's YCSB driver is a getData and a setData (read, merge the fields, write),
so with the declared delays its floor is the client-leader round trip plus ZooKeeper's write
path (client -> leader -> followers' ACKs from a quorum -> leader -> client); a READ is one
client-leader round trip.

## netem against the emulator, same hosts, one run

A VM on Debian's kernel, where netem exists (virtme-ng under TCG, 2 vCPUs: everything runs
about 10x slower than on the host, so compare the two methods with each other).
scripts/bench-delay/methods-lab.yaml: the declared delays by netem and by the emulator, each with
the declared jitter and without it. Machine: {machine(a.vm)}. {problems(a.vm)}

{table(vm)}

## Where the tail comes from (this machine's lab, the emulator)

No netem on this kernel, so the emulator. scripts/bench-delay/tail-lab.yaml: no delays, the
declared delays without jitter, and as shipped; then the same with ZooKeeper's `forceSync=no`
(scripts/bench-delay/zoo-no-fsync.cfg.tera through the inventory's `templates:`), which takes the
transaction log's fsync out of every write. Machine: {machine(a.host)}. {problems(a.host)}

With fsync (ZooKeeper's default):

{table(host)}

Without fsync (`forceSync=no`): {problems(a.nosync)}

{table(nosync)}

Reading (computed from the tables above):

{reading(host, nosync, vm)}
""")


if __name__ == "__main__":
    sys.exit(main())
