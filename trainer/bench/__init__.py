"""Benchmarks, probes and statistics: the environment's speed against BrowserGym (`env_bench`), the
copy and induction probes of the tiny model (`probes`), the GPU-built induction base (`induction_base`),
the actor-update and generation benchmarks at real model shapes (`gpu_bench`), the one-call GPU check
(`gpu_check`, run by scripts/gpu_check.sh), and paired comparisons of evaluated policies and a
classifier's figures (`stats`, pure math). Commands that print measured numbers.

May import anything in `trainer`; nothing in `trainer` imports it but the CLI.
"""
