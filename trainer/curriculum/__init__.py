"""The self-evolving curriculum (spec §6) over plain task configs: generators that turn failed tasks
into candidates, the feasibility, novelty and difficulty filters, and sentence embeddings.

May import: `trainer.config`, `trainer.prompts` and `trainer.serve` (text models behind one interface).
Never the browser or the learning code: Django stores the results and the caller scores difficulty.
"""
