"""Policy sampling behind one interface: in-process Hugging Face `generate` (`hf`), the one
OpenAI-compatible client (`openai_client`), the `vllm serve` launcher (`vllm`), the backend a config
names (`backends`), and the project's own OpenAI-compatible server (`server`).

May import: `trainer.config`, `trainer.prompts`, `trainer.learn` (models, tokenizer, data) and the
environment's data types (`trainer.env.types`). Never the browser, the curriculum or benchmarks.
"""
