"""Command line: parse, call the engine, render. Errors become one line and an exit code."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from diplosearch import __version__, render
from diplosearch.ann import FLAT_LIMIT, INDEX_TYPES
from diplosearch.engine import MAX_RESULTS, MODES, Engine
from diplosearch.errors import DiplosearchError, IndexCorruptError
from diplosearch.filters import Filters
from diplosearch.models import BACKENDS


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DiplosearchError as exc:
            hint = ""
            if isinstance(exc, IndexCorruptError):
                hint = " (left as it is; `diplosearch index` sets it aside and rebuilds)"
            click.echo(render.printable(f"diplosearch: error: {exc}{hint}"), err=True)
            ctx.exit(exc.exit_code)


class _ProgressBar:
    """Adapts the engine's ``progress(done, total)`` callback to a click progress bar."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=total, label=f"embedding {total} texts", file=sys.stderr
            )
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _warn(message: str) -> None:
    click.echo(render.printable(f"diplosearch: warning: {message}"), err=True)


_index_option = click.option(
    "--index",
    "index_dir",
    envvar="DIPLOSEARCH_INDEX",
    default="index",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Index folder (env DIPLOSEARCH_INDEX).",
)


def _corpus_options(command: Any) -> Any:
    command = _index_option(command)
    return click.option(
        "--seeds",
        envvar="DIPLOSEARCH_SEEDS",
        default="seeds",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Corpus folder of .txt/.md documents (env DIPLOSEARCH_SEEDS).",
    )(command)


def _run_with_progress(call: Any) -> Any:
    bar = _ProgressBar()
    try:
        return call(bar)
    finally:
        bar.close()


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="diplosearch")
def cli() -> None:
    """Semantic search over news and diplomatic reporting, with cited passages.

    Documents in the corpus folder are split into paragraphs, embedded and indexed; a
    search returns the passages that answer a question, each cited by file, lines,
    paragraph, title and date. The index follows the corpus: changed files are re-indexed
    before the next search.
    """


_DATE = click.DateTime(formats=["%Y-%m-%d"])


@cli.command()
@click.argument("query", nargs=-1, required=True)
@click.option(
    "-k",
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_RESULTS),
    help="Number of distinct passages to return.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="dense (embeddings), lexical (BM25) or both fused.",
)
@click.option("--since", type=_DATE, help="Only passages dated on or after YYYY-MM-DD.")
@click.option("--until", type=_DATE, help="Only passages dated on or before YYYY-MM-DD.")
@click.option(
    "--source",
    "source_glob",
    metavar="GLOB",
    help="Only documents whose path matches GLOB (e.g. '00[34]_*').",
)
@click.option("--speaker", metavar="NAME", help="Only passages reporting NAME speaking.")
@click.option(
    "--timeline",
    is_flag=True,
    help="Order the results by date, grouped by document: a dated history.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--no-refresh",
    is_flag=True,
    help="Answer from the index as built, even if the corpus changed since.",
)
@_corpus_options
def search(
    query: tuple[str, ...],
    top: int,
    mode: str,
    since: Any,
    until: Any,
    source_glob: str | None,
    speaker: str | None,
    timeline: bool,
    as_json: bool,
    no_refresh: bool,
    seeds: Path,
    index_dir: Path,
) -> None:
    """Find the passages that answer QUERY, best first, with citations.

    Put a phrase in double quotes to require it. Copies of one statement (syndicated
    reports) are shown once, with where else they appear.

    Example: diplosearch search "what was said about the China-Kyrgyzstan-Uzbekistan railway"
    """
    text = " ".join(query).strip()
    if not text:
        raise click.UsageError("the query is empty")
    filters = Filters(
        since=since.date().isoformat() if since else None,
        until=until.date().isoformat() if until else None,
        source=source_glob,
        speaker=speaker,
    )
    engine = Engine(seeds, index_dir)
    response = _run_with_progress(
        lambda bar: engine.search(
            text, top, mode=mode, filters=filters, refresh=not no_refresh, progress=bar
        )
    )
    if response.refreshed:
        click.echo(render.refresh(response.refreshed), err=True)
    for warning in response.warnings:
        _warn(warning)
    if response.stale:
        _warn(
            f"corpus changed since the index was built ({render.changes(response.stale)}); "
            "answering from the old index"
        )
    if response.searched != text:
        click.echo(render.printable(f"searching for: {response.searched}"), err=True)
    results = render.timeline_order(response.results) if timeline else response.results
    if as_json:
        click.echo(render.json_text(response.to_json(results)))
        return
    if not results:
        click.echo("no passages found", err=True)
        return
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    if timeline:
        click.echo(render.timeline(results, width))
    else:
        click.echo("\n\n".join(render.result(item, width) for item in results))


@cli.command()
@click.option("--rebuild", is_flag=True, help="Re-chunk every document, not only the changed ones.")
@click.option(
    "--index-type",
    type=click.Choice(INDEX_TYPES),
    help="FAISS index: exact (flat), approximate (hnsw), or auto: flat up to "
    f"{FLAT_LIMIT:,} chunks, then hnsw. Kept by later refreshes. [default: auto]",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="torch",
    show_default=True,
    help="What runs the model while embedding: torch (float32), bf16 (bfloat16, about 2x "
    "faster on CPUs with AMX or AVX512-BF16; cosine 0.9999 to float32) or onnx.",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="[ADDRESS]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Embed on a Ray cluster (pip install 'diplosearch[ray]'): ADDRESS of its head "
    "(e.g. ray://head:10001 or auto), or none for a local Ray or $RAY_ADDRESS.",
)
@_corpus_options
def index(
    rebuild: bool,
    index_type: str | None,
    backend: str,
    ray_address: str | None,
    seeds: Path,
    index_dir: Path,
) -> None:
    """Bring the index in step with the corpus (searches do this too).

    Only changed files are re-chunked and only chunk texts never embedded before are
    embedded; every file of the live index is checked, and a damaged one is rebuilt (the
    damaged files are set aside, not deleted). The new index replaces the old one
    atomically; if another process is writing the index, this says who and stops.
    """
    from diplosearch.models import MiniLM

    model: Any = MiniLM(backend=backend)
    if ray_address is not None:
        from diplosearch.distributed import RayModel

        model = RayModel(model, ray_address or None)
    engine = Engine(seeds, index_dir, model)
    report = _run_with_progress(
        lambda bar: engine.refresh(
            rebuild=rebuild, heal=True, wait=0, progress=bar, index_type=index_type
        )
    )
    for notice in engine.notices:
        _warn(notice)
    if report is None:
        click.echo("index is up to date", err=True)
    else:
        click.echo(render.refresh(report), err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_index_option
def verify(as_json: bool, index_dir: Path) -> None:
    """Check the index's integrity, like Lucene's CheckIndex.

    Checks the pointer, the checksum and size of every file of the live and previous
    generations, the counts (vectors, chunk rows, BM25 rows, sentence vectors), that vectors
    are finite and unit length. Notes folders left by interrupted builds (the next build
    removes them) and lists damaged generations set aside. Exits 5 if anything is damaged.
    """
    from diplosearch.store import IndexStore

    problems, checked = IndexStore(index_dir).verify()
    if as_json:
        click.echo(render.json_text({"ok": not problems, "problems": problems, "checked": checked}))
    else:
        for line in checked:
            click.echo(render.printable(f"ok: {line}"))
        for line in problems:
            click.echo(render.printable(f"problem: {line}"))
        click.echo("index is sound" if not problems else f"{len(problems)} problem(s) found")
    if problems:
        raise SystemExit(5)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_corpus_options
def status(as_json: bool, seeds: Path, index_dir: Path) -> None:
    """Show what is indexed, with which model, and whether the corpus changed since."""
    state = Engine(seeds, index_dir).status()
    if not as_json:
        click.echo(render.status(state, seeds, index_dir))
        return
    manifest = state.manifest
    changes = state.changes
    payload = {
        "seeds": str(seeds),
        "index": str(index_dir),
        "generation": manifest.generation if manifest else None,
        "created": manifest.created if manifest else None,
        "model": manifest.model if manifest else None,
        "dimension": manifest.dimension if manifest else None,
        "documents": len(manifest.sources) if manifest else 0,
        "chunks": manifest.chunks if manifest else 0,
        "index_type": manifest.index_type if manifest else None,
        "fresh": bool(manifest) and not state.problem and not changes,
        "problem": state.problem,
        "changes": {
            "added": list(changes.added),
            "changed": list(changes.changed),
            "removed": list(changes.removed),
        }
        if changes is not None
        else None,
    }
    click.echo(render.json_text(payload))


@cli.command(name="eval")
@click.argument("judgements", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-k",
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Cut-off for recall.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_corpus_options
def eval_command(judgements: Path, top: int, as_json: bool, seeds: Path, index_dir: Path) -> None:
    """Measure retrieval quality of every mode against JUDGEMENTS.

    JUDGEMENTS is a JSON file: {"queries": [{"query": "...", "relevant": [["file.txt",
    "text a relevant passage contains"], ...]}, ...]}. Prints Recall@k, MRR@10 and
    nDCG@10 for the dense, lexical and hybrid modes.
    """
    from diplosearch import evaluate

    judged = evaluate.load(judgements)
    engine = Engine(seeds, index_dir)
    table = _run_with_progress(lambda bar: evaluate.evaluate(engine, judged, MODES, top))
    if as_json:
        click.echo(json.dumps({"queries": len(judged), "modes": table}, indent=2))
        return
    click.echo(render.evaluation(table, len(judged)))


def main() -> None:
    cli(prog_name="diplosearch")
