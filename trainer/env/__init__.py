"""The browser environment: episode types, the Chromium pool and the episode loop, observation (with
`js/observe.js`), the action grammar and its execution, evaluators, WebArena configs, MiniWoB++, the judge.

May import: `trainer.config`, `trainer.prompts`, Playwright and its own modules. Never the learning,
serving or curriculum code, torch or transformers: an environment runs without a model.
"""
