"""Every administrator operation once: validation, typed errors and an audit record. The CLI, the console and
the JSON API are thin adapters over it."""
