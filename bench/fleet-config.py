#!/usr/bin/env python3
"""Derive the fleet benchmark's Prometheus config from the shipped
prometheus/prometheus.yml by a small, checked transformation:

- the clavis-pop job scrapes plain HTTP without basic auth (the simulator
  serves neither TLS nor auth): `scheme: https` -> `http`, its tls_config
  and basic_auth blocks removed;
- the loopback addresses of Prometheus, Alertmanager and alertbridge are
  this run's (--prometheus, --alertmanager, --alertbridge);
- with --remote-write URL, a remote_write section is appended.

Everything else (intervals, rules, file_sd, relabelling) stays as shipped.
Every edit must match exactly where expected, so a change to the shipped
file that the benchmark no longer understands fails loudly.

--print-drop-regex prints the regex of the POP job's metric_relabel drop
rule instead (for the backfill).
"""
import argparse
import re
import sys


def fail(msg):
    sys.exit("fleet-config: " + msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--prometheus", default="127.0.0.1:9090")
    ap.add_argument("--alertmanager", default="127.0.0.1:9093")
    ap.add_argument("--alertbridge", default="127.0.0.1:9746")
    ap.add_argument("--remote-write")
    ap.add_argument("--print-drop-regex", action="store_true")
    a = ap.parse_args()
    lines = open(a.src).read().split("\n")

    # The clavis-pop job's lines.
    start = [i for i, l in enumerate(lines) if l == "  - job_name: clavis-pop"]
    if len(start) != 1:
        fail("no single '  - job_name: clavis-pop'")
    end = next((i for i in range(start[0] + 1, len(lines)) if lines[i].startswith("  - job_name:")), len(lines))
    job = lines[start[0]:end]

    if a.print_drop_regex:
        for i, l in enumerate(job):
            m = re.match(r"\s+regex: '(.*)'$", l)
            if m and any("action: drop" in x for x in job[i:i + 3]):
                print(m.group(1))
                return
        fail("no metric_relabel drop rule in the clavis-pop job")

    out, removed, skipping, scheme = [], set(), False, 0
    for l in job:
        if skipping and (l.startswith("      ") or l == ""):
            continue
        skipping = False
        if l in ("    tls_config:", "    basic_auth:"):
            removed.add(l.strip())
            skipping = True
            continue
        if l == "    scheme: https":
            l, scheme = "    scheme: http", scheme + 1
        out.append(l)
    if removed != {"tls_config:", "basic_auth:"} or scheme != 1:
        fail("clavis-pop job: expected scheme https, tls_config and basic_auth (found %s, scheme edits %d)" % (sorted(removed), scheme))
    text = "\n".join(lines[:start[0]] + out + lines[end:])

    for old, new, want in (("'127.0.0.1:9093'", "'%s'" % a.alertmanager, 2),
                           ("'127.0.0.1:9746'", "'%s'" % a.alertbridge, 1),
                           ("'127.0.0.1:9090'", "'%s'" % a.prometheus, 1)):
        if text.count(old) != want:
            fail("%s occurs %d times, expected %d" % (old, text.count(old), want))
        text = text.replace(old, new)
    if a.remote_write:
        if "\nremote_write:" in text:
            fail("the shipped config already has remote_write")
        text = text.rstrip("\n") + "\n\n# Added by bench/fleet-config.py for the VictoriaMetrics phase.\nremote_write:\n  - url: %s\n" % a.remote_write
    sys.stdout.write(text)


main()
