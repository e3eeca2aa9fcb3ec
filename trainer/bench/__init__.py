"""Benchmarks and probes: the environment's speed against BrowserGym (`env_bench`) and the copy and
induction probes of the tiny model (`probes`). Commands that print measured numbers.

May import anything in `trainer`; nothing in `trainer` imports it but the CLI.
"""
