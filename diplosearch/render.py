"""Human-readable text for the CLI: results, refresh reports and index status."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from diplosearch.engine import Changes, RefreshReport, SearchResult, Status


def citation(source: str, lines: tuple[int, int]) -> str:
    start, end = lines
    return f"{source}:{start}" if start == end else f"{source}:{start}-{end}"


def result(item: SearchResult, width: int) -> str:
    """One ranked passage: rank, score, ``source:lines``, title, date, then the wrapped text."""
    indent = " " * 4
    head = (
        f"{item.rank:>2}. "
        + click.style(f"{item.score:.3f}", fg="cyan")
        + "  "
        + click.style(citation(item.source, item.lines), bold=True)
        + f"  ¶{item.paragraph}"
        + (f"  {item.date}" if item.date else "  (undated)")
    )
    lines = [head]
    if item.title:
        lines.append(indent + click.style(item.title, fg="yellow"))
    if item.section and item.section != item.title:
        lines.append(indent + click.style(f"› {item.section}", fg="yellow"))
    body_width = max(20, width - len(indent))
    lines.extend(
        textwrap.wrap(item.text, width=body_width, initial_indent=indent, subsequent_indent=indent)
    )
    return "\n".join(lines)


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
    return (
        f"index {report.generation}: {report.reason} ({changes(report.changes)}); "
        f"{report.documents} documents, {report.chunks} chunks, "
        f"{report.embedded} embedded, {report.chunks - report.embedded} reused"
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
                f"  {name}  {entry.date or 'undated':<10}  {entry.chunks:>4} chunks  "
                f"{entry.title or '(untitled)'}"
            )
    return "\n".join(lines)
