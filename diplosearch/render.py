"""Human-readable text for the CLI: results, refresh reports and index status."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import click

from diplosearch.engine import Status
from diplosearch.results import Changes, Citation, Context, RefreshReport, SearchResult

#: Characters a terminal would act on rather than show: C0/C1 controls, DEL, and the bidi
#: overrides that can make a line read differently from what it holds.
_UNPRINTABLE_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


#: What json.dumps leaves raw in strings (it escapes C0 itself; its own newlines are layout).
_JSON_RAW_RE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters shown as escapes, tabs as spaces."""
    return _UNPRINTABLE_RE.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text.replace("\t", " "),
    )


def json_text(payload: object) -> str:
    """JSON for standard output: readable UTF-8, but with every character a terminal would
    act on escaped (json leaves C1 controls and bidi overrides raw)."""
    text = json.dumps(payload, ensure_ascii=False, indent=2)
    return _JSON_RAW_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def citation(item: SearchResult | Citation) -> str:
    """``file:lines`` for text, ``file p. 3`` (``pp. 3-4``) for a PDF, else the file."""
    source = printable(item.source)
    if item.lines:
        start, end = item.lines
        return f"{source}:{start}" if start == end else f"{source}:{start}-{end}"
    if item.page:
        first, last = item.page
        return f"{source} p. {first}" if first == last else f"{source} pp. {first}-{last}"
    return source


def wrap_highlighted(text: str, span: tuple[int, int], width: int, indent: str) -> list[str]:
    """Wrap ``text`` to ``width``, the words inside ``span`` in bold (ANSI is dropped by
    click when the output is not a terminal)."""
    start, end = span
    rows: list[list[tuple[str, bool]]] = [[]]
    used = len(indent)
    for match in re.finditer(r"\S+", text):
        word = match.group()
        if rows[-1] and used + 1 + len(word) > width:
            rows.append([])
            used = len(indent)
        used += len(word) + (1 if rows[-1] else 0)
        inside = start < end and match.start() < end and match.end() > start
        rows[-1].append((printable(word), inside))
    lines = []
    for row in rows:
        runs = [
            " ".join(word for word, _ in group)
            for _, group in itertools.groupby(row, key=lambda item: item[1])
        ]
        flags = [inside for inside, _ in itertools.groupby(row, key=lambda item: item[1])]
        styled = [
            click.style(run, bold=True, underline=True) if inside else run
            for run, inside in zip(runs, flags, strict=True)
        ]
        if row:
            lines.append(indent + " ".join(styled))
    return lines


def _also_in(item: SearchResult) -> str:
    return ", ".join(
        citation(c) + (f" ({c.date})" if c.date else "") for c in item.also_in
    )


def result(item: SearchResult, width: int) -> str:
    """One ranked passage: rank, score, ``source:lines``, title, date, speakers, then the
    wrapped text with the best-matching sentence highlighted."""
    indent = " " * 4
    head = (
        f"{item.rank:>2}. "
        + click.style(f"{item.score:.3f}", fg="cyan")
        + "  "
        + click.style(citation(item), bold=True)
        + f"  ¶{item.paragraph}"
        + (f"  {item.date}" if item.date else "  (undated)")
    )
    lines = [head]
    if item.title:
        lines.append(indent + click.style(printable(item.title), fg="yellow"))
    if item.url:
        lines.append(indent + click.style(printable(item.url), fg="blue"))
    if item.section and item.section != item.title:
        lines.append(indent + click.style(f"› {printable(item.section)}", fg="yellow"))
    if item.speakers:
        who = printable(", ".join(item.speakers))
        lines.append(indent + click.style(f"speakers: {who}", fg="magenta"))
    lines.extend(wrap_highlighted(item.text, item.highlight, max(40, width), indent))
    if item.also_in:
        lines.append(indent + click.style("also in: " + _also_in(item), dim=True))
    return "\n".join(lines)


def timeline_order(results: list[SearchResult]) -> list[SearchResult]:
    """Dated first, oldest first; within a date by document and position; undated last."""
    return sorted(
        results,
        key=lambda r: (r.date is None, r.date or "", r.source, r.paragraph, r.lines or (0, 0)),
    )


def timeline(results: list[SearchResult], width: int) -> str:
    """The results as a dated history, grouped by document: who said what, when."""
    blocks: list[str] = []
    current: tuple[str | None, str] | None = None
    for item in timeline_order(results):
        key = (item.date, item.source)
        if key != current:
            current = key
            heading = click.style(item.date or "undated", fg="cyan", bold=True)
            title = f"  {printable(item.title)}" if item.title else ""
            source = click.style(printable(item.source), bold=True)
            blocks.append(f"{heading}  {source}{title}")
        start, end = (
            item.highlight if item.highlight[0] < item.highlight[1] else (0, len(item.text))
        )
        who = printable(", ".join(item.speakers)) or "unattributed"
        lines = [
            f"  #{item.rank} {citation(item)} ¶{item.paragraph}  "
            + click.style(who, fg="magenta")
        ]
        lines.extend(wrap_highlighted(item.text[start:end], (0, 0), max(40, width), " " * 6))
        if item.also_in:
            lines.append(" " * 6 + click.style("also in: " + _also_in(item), dim=True))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def changes(change: Changes) -> str:
    parts = [
        f"{len(names)} {label}"
        for label, names in (
            ("added", change.added),
            ("changed", change.changed),
            ("removed", change.removed),
        )
        if names
    ]
    return ", ".join(parts) if parts else "no changes"


def refresh(report: RefreshReport) -> str:
    return printable(
        f"index {report.generation}: {report.reason} ({changes(report.changes)}); "
        f"{report.documents} documents, {report.chunks} chunks, "
        f"{report.embedded} embedded, {report.chunks - report.embedded} reused"
        + (f"; {report.embedded_sentences} sentence vectors" if report.embedded_sentences else "")
        + (f"; waited {report.waited:.1f} s for the lock" if report.waited >= 0.05 else "")
    )


def status(state: Status, seeds: Path, index: Path) -> str:
    lines = [f"corpus:  {seeds}", f"index:   {index}"]
    manifest = state.manifest
    if manifest is not None:
        lines += [
            f"build:   {manifest.generation}, {manifest.created}",
            f"model:   {manifest.model} ({manifest.dimension}-d, "
            f"weights {manifest.model_fingerprint[:12]})",
            f"content: {len(manifest.sources)} documents, {manifest.chunks} chunks",
            "formats: " + _counts(manifest.count_by("format")),
            "languages: " + _counts(manifest.count_by("language")),
            f"vectors: {manifest.index_type} index"
            + (" (auto)" if manifest.index_request == "auto" else " (asked for)"),
            f"terms:   {len(manifest.acronyms)} acronyms defined in the corpus",
        ]
    if state.problem:
        lines.append(f"state:   needs a rebuild: {state.problem}")
    elif state.changes:
        lines.append(f"state:   stale, corpus changed since the build: {changes(state.changes)}")
        for label, names in (
            ("added", state.changes.added),
            ("changed", state.changes.changed),
            ("removed", state.changes.removed),
        ):
            lines.extend(f"         {label}: {name}" for name in names)
    else:
        lines.append("state:   up to date")
    if manifest is not None:
        lines.append("")
        for name, entry in manifest.sources.items():
            lines.append(
                f"  {name}  {entry.date or 'undated':<10}  {entry.language or '--':<2}  "
                f"{entry.chunks:>4} chunks  {entry.title or '(untitled)'}"
            )
    lines.extend(f"note: {n}" for n in state.notes)
    lines.extend(f"warning: {w}" for w in state.warnings)
    return "\n".join(printable(line) for line in lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counts.items())


def evaluation(table: dict[str, dict[str, float]], queries: int) -> str:
    """Markdown tables: one row per mode, one column per measure (rows with other
    measures, such as ``--all``'s precision and recall, get a table of their own)."""
    lines = [f"{queries} queries"]
    groups: dict[tuple[str, ...], list[str]] = {}
    for mode, scores in table.items():
        groups.setdefault(tuple(scores), []).append(mode)
    for measures, modes in groups.items():
        lines += [
            "",
            "| mode | " + " | ".join(measures) + " |",
            "|---|" + "---:|" * len(measures),
        ]
        for mode in modes:
            cells = [_measure(table[mode][m]) for m in measures]
            lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _measure(value: float) -> str:
    return f"{value:.3f}" if value <= 1 else f"{value:.1f}"


def context(item: Context, width: int) -> str:
    """A passage and its neighbours: the citation and title, then each paragraph with its
    lines, the one asked for marked and in bold."""
    indent = " " * 4
    date = next((c.date for c in item.passages if c.paragraph == item.paragraph), None)
    lines = [
        click.style(printable(item.source), bold=True)
        + f"  ¶{item.paragraph}"
        + (f"  {date}" if date else "  (undated)")
    ]
    if item.title:
        lines.append(indent + click.style(printable(item.title), fg="yellow"))
    for passage in item.passages:
        asked = passage.paragraph == item.paragraph
        mark = "»" if asked else " "
        lines.append(
            f"{mark} ¶{passage.paragraph}  "
            + click.style(citation(passage), dim=not asked)
        )
        span = (0, len(passage.text)) if asked else (0, 0)
        lines.extend(wrap_highlighted(passage.text, span, max(40, width), indent))
    return "\n".join(lines)
