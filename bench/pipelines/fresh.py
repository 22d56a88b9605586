"""One run from a fresh process: ``python fresh.py CHAIN EXECUTOR`` (timed by bench.py)."""

import sys

import workloads

import heron

pipeline = {"3": workloads.chain3, "20": workloads.chain20}[sys.argv[1]]
run = heron.run_pipeline(pipeline, params={"n": int(sys.argv[3])}, executor=sys.argv[2])
assert run.status == "succeeded", run.error
