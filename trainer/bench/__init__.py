"""Benchmarks, probes and statistics: the environment's speed against BrowserGym (`env_bench`), the
copy and induction probes of the tiny model (`probes`), and paired comparisons of evaluated policies
and a classifier's figures (`stats`, pure math). Commands that print measured numbers.

May import anything in `trainer`; nothing in `trainer` imports it but the CLI.
"""
