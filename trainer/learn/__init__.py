"""Learning: models and tokenizer, step data, the generic training engine (devices, dtypes, accumulation,
atomic checkpoints, resume) and the objectives on top of it (SFT, actor, critic, ORM), losses, replay
copy pretraining, and where frozen models run (`placement`).

May import: `trainer.config`, `trainer.prompts`, torch, transformers and its own modules. Never the
browser (`trainer.env`, Playwright), sampling, curriculum or benchmarks.
"""
