"""One module per site: `SITE`, `AGENT_USER`, `seed_state(rng)` and `routes()`."""
