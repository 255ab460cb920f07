#!/usr/bin/env python3
"""Split a recording-rules file into one file per dependency level, for
`promtool tsdb create-blocks-from rules`, which evaluates every rule
against the running Prometheus and so cannot see what it records in the
same run: a rule that reads another recorded series would backfill
nothing. Level 0 reads only scraped series; level n reads a series
recorded at level n-1 or below. Each group keeps its name and interval.

usage: rule-levels.py RULES.yml OUTDIR   (writes OUTDIR/level-N.yml, prints the paths)
"""
import os
import re
import sys

import yaml


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    doc = yaml.safe_load(open(src))
    rules = [(g, r) for g in doc["groups"] for r in g["rules"] if "record" in r]
    names = {r["record"] for _, r in rules}
    ident = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
    deps = {r["record"]: {n for n in ident.findall(r["expr"]) if n in names and n != r["record"]} for _, r in rules}
    level = {}

    def lv(n, seen=()):
        if n in level:
            return level[n]
        if n in seen:
            sys.exit("rule-levels: dependency cycle through %s" % n)
        level[n] = max((lv(d, seen + (n,)) + 1 for d in deps[n]), default=0)
        return level[n]

    for n in names:
        lv(n)
    os.makedirs(outdir, exist_ok=True)
    for k in range(max(level.values()) + 1):
        groups = []
        for g in doc["groups"]:
            rs = [r for r in g["rules"] if "record" in r and level[r["record"]] == k]
            if rs:
                ng = {"name": g["name"], "rules": rs}
                if "interval" in g:
                    ng["interval"] = g["interval"]
                groups.append(ng)
        p = os.path.join(outdir, "level-%d.yml" % k)
        with open(p, "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        print(p)


main()
