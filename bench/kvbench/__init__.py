"""kvbench: the side-by-side benchmark harness (real etcd 3.5.1 vs kvetch).

Modules: ``servers`` (start/stop one member, resource sampling), ``loadgen``
(multi-process gRPC load), ``workloads`` (what each workload does), ``report``
(targets, table, JSON, chart), ``profiling`` (py-spy). ``bench/run.py`` is the CLI.
"""
