"""The conformance and interoperability suite behind ``make interop``.

It replays the recorded WS-Trust traffic under ``fixtures/recorded`` against a running STS (ours, started in a
throw-away home, or any other given by URL) and runs independent clients and verifiers nobody here wrote against
it, then prints a case × peer matrix and writes it as Markdown and HTML under ``build/interop``.
"""
