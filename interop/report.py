"""The report: what was tested, against what, and every result with its reason, as Markdown and HTML.

Written for someone who has never seen the project: it opens with what the suite does and how to read a
cell, then gives the peer matrices (token case × verifier, client case × client) and the fixture table.
The HTML page is self-contained (inline CSS, no script, no external resource).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from .matrix import ClientRow, TokenRow
from .model import Status, Verdict
from .replay import FixtureResult

__all__ = ["Report", "write_reports"]

_MARK: Final = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.SKIP: "skipped", Status.NA: "n/a"}
_INTRO: Final = """\
This report comes from `make interop`, the conformance and interoperability suite of **sts**, a WS-Trust
Security Token Service. It checks the STS named below in three ways:

1. **Verifier peers**: the STS issues a token for each relying-party profile (SAML 1.1 / 2.0, encrypted or not,
   RSA or ECDSA signatures, WS-Trust 1.3 and 2005/02); independent libraries that nobody on this project wrote
   then verify the signature (trusting only the STS certificate), decrypt with the relying party's key, and
   read the subject, audience and claims, which must match what the STS should have put in.
2. **Client peers**: independent WS-Trust clients build their own requests, call the STS, parse its answer
   and extract the token, which must then verify.
3. **Recorded fixtures**: real messages from AD FS, PingFederate, IBM TFIM, Apache CXF, Metro, PicketLink and
   from clients' test data (see `fixtures/recorded/*/PROVENANCE.md`) are replayed with fresh timestamps,
   nonces, user and relying party; each answer is checked against the fixture's sidecar (`*.toml`).
   Recorded responses are read by our client and `sts token show` and compared in shape with our answer to
   the equivalent request; recorded MEX/WSDL documents are read by our client.

Cells: **pass**; **FAIL** (with the peer's own error); **skipped** (the peer could not run on this machine:
the reason says why; never counted as a pass); **n/a** (the case does not apply: the reason says why).
"""


@dataclass(frozen=True)
class Report:
    target: str
    ours: bool
    peers: Sequence[tuple[str, str, str | None]]       # (name, about, unavailable reason)
    token_rows: Sequence[TokenRow]
    client_rows: Sequence[ClientRow]
    fixtures: Sequence[FixtureResult]
    started: datetime
    seconds: float

    def verdicts(self) -> Iterable[Verdict]:
        for row in self.token_rows:
            yield from row.cells.values()
            if row.issue is not None:
                yield row.issue
        for client_row in self.client_rows:
            yield from client_row.cells.values()
        for result in self.fixtures:
            yield from result.checks.values()

    def counts(self) -> Counter[Status]:
        return Counter(v.status for v in self.verdicts())

    @property
    def skipped(self) -> list[str]:
        """The reasons of skipped cells (a peer that could not run here)."""
        return [v.detail for v in self.verdicts() if v.status is Status.SKIP]

    @property
    def failed(self) -> bool:
        return self.counts()[Status.FAIL] > 0

    def summary(self) -> str:
        counts = self.counts()
        return ", ".join(f"{counts[s]} {_MARK[s]}" for s in Status) + f" in {self.seconds:.0f} s"


def write_reports(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, page = out_dir / "report.md", out_dir / "report.html"
    markdown.write_text(render_markdown(report), encoding="utf-8")
    page.write_text(render_html(report), encoding="utf-8")
    return markdown, page


# --- Markdown -------------------------------------------------------------------------------------------------


def render_markdown(report: Report) -> str:
    lines = [f"# Interoperability report: {'FAILED' if report.failed else 'passed'}", "", _INTRO,
             f"- **STS under test:** {report.target} ({'this project, started for the run' if report.ours else 'another STS'})",
             f"- **When:** {report.started:%Y-%m-%d %H:%M} UTC; **result:** {report.summary()}", "", "## Peers", ""]
    lines += _md_table(["peer", "what it is", "available here"],
                       [[n, a, "yes" if r is None else f"no: {r}"] for n, a, r in report.peers])
    lines += ["", "## Verifier peers × token cases", ""]
    lines += _md_matrix(report.token_rows)
    lines += ["", "## Client peers × client cases", ""]
    lines += _md_matrix(report.client_rows)
    lines += ["", "## Recorded fixtures", "", "Each check of each fixture, with its result and detail.", ""]
    lines += _md_table(["fixture", "what it is", "result", "checks"], [
        [f"`{r.fixture.name}`", _what(r),
         _MARK[_overall(r)], "<br>".join(f"{check}: {_MARK[v.status]}" + (f" ({v.detail})" if v.detail else "")
                                        for check, v in r.checks.items())]
        for r in report.fixtures])
    lines += ["", "## Why cells are not passes", ""]
    lines += [f"- {where}: **{_MARK[v.status]}**: {v.detail}" for where, v in _non_passes(report)] or ["None."]
    return "\n".join(lines) + "\n"


def _md_matrix(rows: Sequence[TokenRow | ClientRow]) -> list[str]:
    peers = _columns(rows)
    table = []
    for row in rows:
        issue = row.issue if isinstance(row, TokenRow) else None
        cells = [_MARK[issue.status] + ": " + issue.detail if issue else _MARK[row.cells[p].status]
                 if p in row.cells else "" for p in peers]
        table.append([f"`{row.case}`", row.description, *cells])
    return _md_table(["case", "what", *peers], table)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def _columns(rows: Sequence[TokenRow | ClientRow]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.cells))
    return list(seen)


def _non_passes(report: Report) -> list[tuple[str, Verdict]]:
    found: list[tuple[str, Verdict]] = []
    for row in report.token_rows:
        if row.issue is not None:
            found.append((f"token `{row.case}`", row.issue))
        found += [(f"token `{row.case}` × {peer}", v) for peer, v in row.cells.items() if v.status is not Status.PASS]
    for client in report.client_rows:
        found += [(f"client `{client.case}` × {peer}", v) for peer, v in client.cells.items()
                  if v.status is not Status.PASS]
    for result in report.fixtures:
        found += [(f"fixture `{result.fixture.name}` {check}", v) for check, v in result.checks.items()
                  if v.status is not Status.PASS]
    return found


# --- HTML -----------------------------------------------------------------------------------------------------

_CSS: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1b1b;max-width:110em}
h1 .ok{color:#0a6b2d} h1 .bad{color:#a4161a}
table{border-collapse:collapse;margin:1em 0} th,td{border:1px solid #c9c9c9;padding:.3em .5em;vertical-align:top}
th{background:#f1f1f1;text-align:left} td.pass{background:#dff3e4} td.fail{background:#f9d7d7;font-weight:600}
td.skipped{background:#fff1c7} td.na{background:#ececec;color:#555} code{font-size:92%}
.detail{font-size:85%;color:#444} .intro{max-width:60em}
"""


def render_html(report: Report) -> str:
    e = html.escape
    verdict = '<span class="bad">FAILED</span>' if report.failed else '<span class="ok">passed</span>'
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sts interoperability report"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Interoperability report: {verdict}</h1>",
             *[_paragraph(p) for p in _INTRO.split("\n\n")],
             f"<p><b>STS under test:</b> {e(report.target)} "
             f"({'this project, started for the run' if report.ours else 'another STS'})<br>"
             f"<b>When:</b> {report.started:%Y-%m-%d %H:%M} UTC; <b>result:</b> {e(report.summary())}</p>",
             "<h2>Peers</h2>", _html_table(["peer", "what it is", "available here"],
                                           [[(n, ""), (a, ""), ("yes" if r is None else f"no: {r}",
                                                                 "" if r is None else "skipped")]
                                            for n, a, r in report.peers]),
             "<h2>Verifier peers × token cases</h2>", _html_matrix(report.token_rows),
             "<h2>Client peers × client cases</h2>", _html_matrix(report.client_rows),
             "<h2>Recorded fixtures</h2>",
             _html_table(["fixture", "what it is", "checks"], [
                 [(r.fixture.name, "code"), (_what(r), ""),
                  (f"{_MARK[_overall(r)]}|" + " · ".join(f"{check}: {_MARK[v.status]}"
                                                          + (f" ({v.detail})" if v.detail else "")
                                                          for check, v in r.checks.items()), _css(_overall(r)))]
                 for r in report.fixtures]),
             "</body></html>"]
    return "\n".join(parts)


def _html_matrix(rows: Sequence[TokenRow | ClientRow]) -> str:
    peers = _columns(rows)
    table = []
    for row in rows:
        issue = row.issue if isinstance(row, TokenRow) else None
        cells = [(f"{_MARK[issue.status]}|{issue.detail}", _css(issue.status)) if issue else
                 (f"{_MARK[row.cells[p].status]}|{row.cells[p].detail}", _css(row.cells[p].status))
                 if p in row.cells else ("", "") for p in peers]
        table.append([(row.case, "code"), (row.description, ""), *cells])
    return _html_table(["case", "what", *peers], table)


def _html_table(header: list[str], rows: list[list[tuple[str, str]]]) -> str:
    e = html.escape
    out = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for text, css in row:
            if css == "code":
                cells.append(f"<td><code>{e(text)}</code></td>")
                continue
            mark, _, detail = text.partition("|") if css else (text, "", "")
            body = e(mark) + (f"<div class='detail'>{e(detail)}</div>" if detail else "")
            cells.append(f"<td class='{css}'>{body}</td>" if css else f"<td>{body}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def _what(result: FixtureResult) -> str:
    source = result.fixture.source
    ours = " **Ours only**: what this project's STS is set up to answer." if result.fixture.expect.ours_only else ""
    return f"{source.about} ({source.origin}, {source.kind}).{ours}"


def _overall(result: FixtureResult) -> Status:
    """The worst of a fixture's checks: a failure, else a skip, else n/a, else a pass."""
    statuses = {v.status for v in result.checks.values()}
    return next((s for s in (Status.FAIL, Status.SKIP, Status.NA) if s in statuses), Status.PASS)


def _css(status: Status) -> str:
    return {Status.PASS: "pass", Status.FAIL: "fail", Status.SKIP: "skipped", Status.NA: "na"}[status]


def _paragraph(text: str) -> str:
    """An intro paragraph, or a numbered list when it is one."""
    if not re.match(r"\d\. ", text):
        return f"<p class='intro'>{_inline(text)}</p>"
    items = re.split(r"\n(?=\d\. )", text.strip())
    return "<ol class='intro'>" + "".join(f"<li>{_inline(i.split(' ', 1)[1])}</li>" for i in items) + "</ol>"


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in the intro, for the HTML page."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped, flags=re.S)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped, flags=re.S)


def now() -> datetime:
    return datetime.now(UTC)
