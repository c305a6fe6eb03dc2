"""`make bench` and `make soak`: measuring the STS (run as scripts, `python bench/run.py`, or as `python -m bench.run`).

One concept a module: ``limits`` (raw signature rates), ``procfs`` (a server's CPU and memory from /proc), ``homes``
(the throw-away STS homes a run serves), ``messages`` (pre-generated unique requests), ``loadgen`` (the load
generator process), ``server`` (one `sts serve` session), ``scenarios`` (what is measured and how one measurement
is taken), ``floor`` (a bare Issue pipeline on the same stack: the yardstick, not a product path), ``verifier`` (the relying party's TokenVerifier in process), ``peers`` (other SAML libraries doing
comparable work), ``targets`` (the figures issue 14 asks for), ``report`` and ``chart`` (the output), ``run`` (the
entry point).
"""
