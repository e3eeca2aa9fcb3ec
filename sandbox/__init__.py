"""The built-in offline web world: five small resettable sites in WebArena-Lite's image.

Pure Python (Starlette + Jinja2 + uvicorn, state in memory); never imports Django.
"""

SITES = ["shopping", "shopping_admin", "reddit", "gitlab", "map"]
DEFAULT_SEED = 0
