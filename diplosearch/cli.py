"""Command line: parse, call the engine, render. Errors become one line and an exit code."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

from diplosearch import __version__, render
from diplosearch.ann import FLAT_LIMIT, INDEX_TYPES
from diplosearch.engine import MAX_RESULTS, MODES, Engine
from diplosearch.errors import DiplosearchError, IndexCorruptError, JudgementsError
from diplosearch.evaluation.judgements import SPLITS
from diplosearch.filters import Filters, period_bound
from diplosearch.models import BACKENDS, DEFAULT_CHOICE


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
    type=click.Path(file_okay=False, readable=False, path_type=Path),
    help="Index folder (env DIPLOSEARCH_INDEX).",
)


def _corpus_options(command: Any) -> Any:
    command = _index_option(command)
    return click.option(
        "--seeds",
        envvar="DIPLOSEARCH_SEEDS",
        default="seeds",
        show_default=True,
        # Not checked here: a missing or unreadable folder, or a file, is the library's
        # CorpusError (exit 3, one line), not a usage error.
        type=click.Path(readable=False, path_type=Path),
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
@click.option(
    "--since",
    metavar="DATE",
    help="Only passages dated on or after DATE: YYYY, YYYY-MM or YYYY-MM-DD.",
)
@click.option(
    "--until",
    metavar="DATE",
    help="Only passages dated on or before DATE: YYYY, YYYY-MM (to its last day) or YYYY-MM-DD.",
)
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
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Every passage that answers (hybrid score above the calibrated threshold), "
    "not only the top k.",
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
    since: str | None,
    until: str | None,
    source_glob: str | None,
    speaker: str | None,
    timeline: bool,
    everything: bool,
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
        since=period_bound(since) if since else None,
        until=period_bound(until, end=True) if until else None,
        source=source_glob,
        speaker=speaker,
    )
    engine = Engine(seeds, index_dir)
    response = _run_with_progress(
        lambda bar: engine.search(
            text,
            top,
            mode=mode,
            filters=filters,
            refresh=not no_refresh,
            progress=bar,
            everything=everything,
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
    "--model",
    "model_choice",
    metavar="PATH",
    help="Embedding model: PATH of a sentence-transformers model folder on disk (a "
    f"multilingual one, say), or {DEFAULT_CHOICE} for the shipped all-MiniLM-L6-v2 "
    "(English). Recorded in the index: searches use it and later refreshes keep it; a "
    "change rebuilds the index (docs/models.md). [default: the index's model]",
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
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=600,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another process writing the index (searches that find "
    "the corpus changed stop writing while this waits); 0 stops at once.",
)
@_corpus_options
def index(
    rebuild: bool,
    index_type: str | None,
    model_choice: str | None,
    backend: str,
    ray_address: str | None,
    wait: float,
    seeds: Path,
    index_dir: Path,
) -> None:
    """Bring the index in step with the corpus (searches do this too).

    Only changed files are re-chunked and only chunk texts never embedded before are
    embedded; every file of the live index is checked, and a damaged one is rebuilt (the
    damaged files are set aside, not deleted). The new index replaces the old one
    atomically. If another process is writing the index, this says who and waits for it
    (up to --wait seconds); searches meanwhile answer from the index as it is.
    """
    from diplosearch.models import MiniLM

    model: Any
    if model_choice is None:  # the index's own model: a refresh does not switch models
        model = Engine(seeds, index_dir).recorded_model(backend)
    elif model_choice == DEFAULT_CHOICE:
        model = MiniLM(backend=backend)
    else:  # not a click.Path: a bad PATH is a ModelError (exit 8), said in one line
        model = MiniLM(Path(model_choice), backend=backend)
    if ray_address is not None:
        from diplosearch.distributed import RayModel

        model = RayModel(model, ray_address or None)
    engine = Engine(seeds, index_dir, model)

    since: list[float] = []

    def waiting(owner: str) -> None:
        since.append(time.monotonic())
        click.echo(render.printable(f"waiting for {owner} to finish writing the index"), err=True)

    report = _run_with_progress(
        lambda bar: engine.refresh(
            rebuild=rebuild,
            heal=True,
            wait=wait,
            progress=bar,
            index_type=index_type,
            waiting=waiting,
        )
    )
    for notice in engine.notices:
        _warn(notice)
    if report is None:
        waited = f" (waited {time.monotonic() - since[0]:.1f} s for the lock)" if since else ""
        click.echo(f"index is up to date{waited}", err=True)
    else:
        click.echo(render.refresh(report), err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_index_option
def verify(as_json: bool, index_dir: Path) -> None:
    """Check the index's integrity, like Lucene's CheckIndex.

    Checks the pointer, the checksum and size of every file of the live and previous
    generations and of their query encoder, the counts (vectors, chunk rows, BM25 rows,
    sentence vectors), that vectors are finite and unit length. Notes folders left by
    interrupted builds (the next build removes them) and lists damaged generations set
    aside. Exits 5 if anything is damaged.
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
@click.argument("source")
@click.argument("paragraph", type=int)
@click.option(
    "-C",
    "--context",
    "around",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Paragraphs to show before and after.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_corpus_options
def show(
    source: str, paragraph: int, around: int, as_json: bool, seeds: Path, index_dir: Path
) -> None:
    """Print paragraph PARAGRAPH of SOURCE, as a search cites it, with the paragraphs
    around it: to read around a result.

    Example: diplosearch show 003_605b4ee0f7fb2dfc.txt 13 -C 1
    """
    engine = Engine(seeds, index_dir)
    shown = _run_with_progress(lambda bar: engine.context(source, paragraph, around, bar))
    for notice in engine.notices:
        _warn(notice)
    if as_json:
        click.echo(render.json_text(shown.to_json()))
        return
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    click.echo(render.context(shown, width))


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
        "formats": manifest.count_by("format") if manifest else {},
        "languages": manifest.count_by("language") if manifest else {},
        "notes": list(state.notes),
        "warnings": list(state.warnings),
        "index_type": manifest.index_type if manifest else None,
        "acronyms": manifest.acronyms if manifest else {},
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
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    help="Only the questions of this half: dev (to choose parameters) or test (to report).",
)
@click.option(
    "--pool",
    "pool_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of scoring, write the unjudged passages of every mode's top 10 (and of "
    "--all) to this JSON-lines file, to be graded.",
)
@click.option(
    "--merge",
    "merge_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of scoring, add the graded lines of this file (a --pool file with "
    "grades filled in) to JUDGEMENTS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_corpus_options
def eval_command(
    judgements: Path,
    top: int,
    split: str | None,
    pool_file: Path | None,
    merge_file: Path | None,
    as_json: bool,
    seeds: Path,
    index_dir: Path,
) -> None:
    """Measure retrieval quality of every mode against JUDGEMENTS.

    JUDGEMENTS is a JSON file: {"queries": [{"query": "...", "split": "dev", "relevant":
    [["file.txt", "text the judged passage contains", 2], ...]}, ...]}, grades 0 (read,
    not relevant), 1 (partly) and 2 (answers); [file, text] is grade 2. Prints nDCG@10,
    Recall@k and MRR@10 of the dense, lexical and hybrid modes, the share of top-10
    results nobody judged, and the precision and recall of --all. docs/evaluation.md
    describes how the judged sets were made and how to grow them.
    """
    from diplosearch.evaluation import judgements as judgement_files
    from diplosearch.evaluation import runs

    if merge_file is not None:
        try:
            lines = merge_file.read_text(encoding="utf-8").splitlines()
            graded = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as exc:
            raise JudgementsError(f"cannot read graded passages in {merge_file}: {exc}") from exc
        todo = [g for g in graded if isinstance(g, dict) and g.get("grade") is None]
        if todo:
            raise JudgementsError(f"{merge_file}: {len(todo)} passages have no grade yet")
        added = judgement_files.merge(judgements, graded)
        click.echo(f"{added} judgements added to {judgements}", err=True)
        return
    judged = judgement_files.load(judgements, split)
    engine = Engine(seeds, index_dir)
    if pool_file is not None:
        pooled = list(runs.pool(engine, judged, MODES))
        pool_file.write_text(
            "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pooled), encoding="utf-8"
        )
        click.echo(f"{len(pooled)} unjudged passages written to {pool_file}", err=True)
        return
    table = _run_with_progress(lambda bar: runs.evaluate(engine, judged, MODES, top, progress=bar))
    if as_json:
        click.echo(json.dumps({"queries": len(judged), "split": split, "modes": table}, indent=2))
        return
    click.echo(render.evaluation(table, len(judged)))


def main() -> None:
    cli(prog_name="diplosearch")
