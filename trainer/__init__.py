"""webrl's trainer: a pure-Python library (no Django, Celery or Channels) that the web app and the CLI call.

Packages, each owning one concern and importing only what its docstring allows
(tests/foundation/layering.py enforces it):
  env/         the browser environment: episodes, observation, actions, evaluators, WebArena, MiniWoB++
  learn/       models, tokenizer, step data, the training engine, SFT, actor, critic, ORM, replay, losses
  serve/       policy sampling (in-process HF, one OpenAI-compatible client, `vllm serve`) and a server
  curriculum/  task generators, filters and embeddings (spec §6)
  bench/       benchmarks, probes and the statistics of results (paired tests, intervals)
Top level: `config` (the one RunConfig schema), `prompts` (the exact prompt formats), `phase` (the stage
plan and the glue from a sampler to the environment's policy), `cli` (`python -m trainer`).
"""
