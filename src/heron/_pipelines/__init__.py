"""Pipelines: steps composed into a DAG, cached, run in-process, on local processes or Ray.

    _step.py          Step (``@heron.step`` is sugar over it) and the step context
    _pipeline.py      Pipeline (``@heron.pipeline``), its params, and the graph a call builds
    _materializers.py how step outputs become artifacts (JSON, Parquet, NumPy, model format)
    _external.py      external inputs (file, folder, URL, dataset) whose digest joins a key
    _cache.py         cache keys: code, inputs, params, libraries, external inputs; why-reasons
    _task.py          running one step attempt anywhere: load inputs, call, store outputs, logs
    _executors.py     in-process, local processes (fork), Ray
    _runner.py        run_pipeline: scheduling, cache decisions, retries, timeouts, cancel
    _service.py       the store side: pipeline runs, step runs, lineage, triggers
    _scheduler.py     ``heron scheduler``: cron and new-dataset-version triggers
    _builtin.py       built-in steps: data validation, sklearn train/evaluate, model gate

Importing this package is cheap: nothing heavy is imported until a pipeline runs.
"""
