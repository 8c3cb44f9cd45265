"""Web page extraction quality on real pages nobody on the team wrote.

    python benchmarks/extraction.py [--pages tests/fixtures/web]
    python benchmarks/extraction.py --select TRAFILATURA/tests [--evaldata evaldata.json]

(Run it by path, as the other benchmarks: ``python -m benchmarks.extraction`` finds the
``benchmarks`` package pysbd installs before this folder, which has no ``__init__.py``.)

The pages and their judgements come from trafilatura's evaluation set (see
tests/fixtures/web/README.md). Every page is read by ``diplosearch.ingest.formats.extract``,
exactly as the corpus walk reads a saved ``.html`` file, and scored against the judgement:

- **main text kept**: share of all "with" strings (sentences of the article) found in the
  extracted text; white space is collapsed to single spaces on both sides first;
- **boilerplate dropped**: share of all "without" strings (navigation, footers, related
  links, ...) absent from the extracted text, white space collapsed likewise. A page that
  raises ``ExtractionError`` keeps nothing: its "with" strings count as missed and its
  "without" strings as dropped (trafilatura's own evaluation counts the same way);
- **title right**, over pages with a judged title: the extracted title, white space
  collapsed, equals the judged one or contains it (``"Title | Site"`` for ``"Title"``);
- **date right**, over pages with a judged date: the extracted ``date`` equals it;
- **pages extracted**: pages that raise no ``ExtractionError``.

Prints a Markdown table per page and the figures; ``measure()`` returns them for
tests/test_extraction_quality.py, which checks the table in docs/formats.md
(``summary_rows()``). Also reports the mean time of one ``extract`` call per page, after
one untimed call that loads trafilatura (not checked by the test: it depends on the machine).

``--select`` draws the sample from a trafilatura checkout and writes the fixtures (the
pages and ``judgements.json``); the rule is :func:`select`'s docstring.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diplosearch.ingest.formats import ExtractionError, extract  # noqa: E402

PAGES = ROOT / "tests" / "fixtures" / "web"

#: Pages the sample must hold whatever the rule draws.
REQUIRED = (
    "football.ua.podolski.html",
    "xinhuanet.com.c_1125597921.html",
    "reuters.com.parasite.html",
)
#: Pages per language (as py3langid classifies the judged title and "with" strings).
QUOTAS = {
    "de": 10, "en": 9, "es": 4, "fr": 4, "pl": 2, "it": 2, "pt": 2, "zh": 2,
    "ru": 1, "ja": 1, "ar": 1, "bn": 1, "no": 1,
}  # fmt: skip
#: Larger pages are left out (except :data:`REQUIRED`), to keep the fixtures small.
MAX_BYTES = 200_000
#: A URL about politics, government or an institution's statements: drawn first.
POLITICS = re.compile(
    r"\bpoliti|\bpolityk|innenpolitik|au(?:ss|ß)enpolitik|regierung"
    r"|bundes(?:tag|rat|pr|kanzl|minist)|minist|parlament|parliament|senat|\bgov\b|gouv"
    r"|\.gv\.at|admin\.ch|\.bund\.de|europa\.eu|diplom|/world/|/welt/|/ausland/|/mundo/"
    r"|/monde/|/international/|pressemitteilung|pressemeldung|presserom|/presse/|/press/",
    re.IGNORECASE,
)
#: A URL of a news site or section: drawn next.
NEWS = re.compile(
    r"news|nachricht|noticia|notizi|actualit|aktuell|uutiset|wiadomosci|zeitung|gazet"
    r"|journal|times|tribune|herald|reuters|xinhua|tagesschau|spiegel|cronaca",
    re.IGNORECASE,
)

_SPACE_RE = re.compile(r"\s+")


def normal(text: str) -> str:
    """White space collapsed to single spaces, ends stripped."""
    return _SPACE_RE.sub(" ", text).strip()


def title_right(extracted: str | None, judged: str) -> bool:
    """The extracted title equals the judged one or contains it, white space collapsed."""
    return extracted is not None and normal(judged) in normal(extracted)


# --- the sample -------------------------------------------------------------------------


def _page_path(tests: Path, name: str) -> Path | None:
    for folder in ("eval", "cache"):
        if (tests / folder / name).is_file():
            return tests / folder / name
    return None


def select(evaldata: dict[str, Any], tests: Path) -> list[str]:
    """The sample's URL keys, in order. The rule, fixed before any page was extracted:

    1. Candidates: entries whose key is an http(s) URL, with at least one "with" and one
       "without" string, whose page exists in ``tests/eval`` or ``tests/cache`` and is at
       most :data:`MAX_BYTES` bytes (the :data:`REQUIRED` pages whatever their size).
    2. Language: py3langid's language of the judged title and "with" strings joined.
    3. Per language of :data:`QUOTAS`, in that order: candidates sorted by required page
       first, then URL about politics/government/institutions (:data:`POLITICS`), then
       news (:data:`NEWS`), then the rest, ties broken by the SHA-256 of the URL; taken
       in that order, at most one page per site (host without ``www.``), up to the quota.
    """
    import py3langid

    pools: dict[str, list[tuple[int, int, str, str]]] = {}
    for url, entry in evaldata.items():
        path = _page_path(tests, entry["file"])
        if path is None or not url.startswith(("http://", "https://")):
            continue
        if not entry.get("with") or not entry.get("without"):
            continue
        required = entry["file"] in REQUIRED
        if path.stat().st_size > MAX_BYTES and not required:
            continue
        language = py3langid.classify(" ".join([entry.get("title") or "", *entry["with"]]))[0]
        rank = 0 if POLITICS.search(url) else 1 if NEWS.search(url) else 2
        digest = hashlib.sha256(url.encode()).hexdigest()
        pools.setdefault(language, []).append((0 if required else 1, rank, digest, url))
    chosen: list[str] = []
    for language, quota in QUOTAS.items():
        sites: set[str] = set()
        for *_, url in sorted(pools.get(language, [])):
            site = (urlsplit(url).hostname or "").removeprefix("www.")
            if len(sites) == quota:
                break
            if site not in sites:
                sites.add(site)
                chosen.append(url)
    files = {evaldata[url]["file"] for url in chosen}
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise SystemExit(f"required pages not drawn: {missing}")
    return chosen


def write_fixtures(evaldata: dict[str, Any], tests: Path, target: Path) -> None:
    """Copy the sample's pages to ``target`` and write its ``judgements.json``."""
    urls = select(evaldata, tests)
    target.mkdir(parents=True, exist_ok=True)
    size = 0
    for url in urls:
        source = _page_path(tests, evaldata[url]["file"])
        assert source is not None
        shutil.copyfile(source, target / source.name)
        size += source.stat().st_size
    judgements = {url: evaldata[url] for url in urls}
    with (target / "judgements.json").open("w", encoding="utf-8") as handle:
        json.dump(judgements, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    print(f"{len(urls)} pages, {size / 1e6:.2f} MB, written to {target}")


# --- the measurement --------------------------------------------------------------------


def measure(pages: Path = PAGES) -> dict[str, Any]:
    """Extract every judged page under ``pages`` and score it (see the module docstring).

    Returns the counts, the shares (0..1, ``None`` when nothing was judged), the mean
    milliseconds per page, and ``rows``: one dict per page.
    """
    judgements: dict[str, Any] = json.loads((pages / "judgements.json").read_text("utf-8"))
    first = next(iter(judgements.values()))["file"]
    extract(first, (pages / first).read_bytes())  # untimed: imports trafilatura
    rows = []
    for url, entry in judgements.items():
        name = entry["file"]
        data = (pages / name).read_bytes()
        start = time.perf_counter()
        try:
            result = extract(name, data)
        except ExtractionError as exc:
            result, error = None, str(exc)
        else:
            error = None
        seconds = time.perf_counter() - start
        text = normal(result.text) if result else ""
        row: dict[str, Any] = {
            "file": name,
            "url": url,
            "error": error,
            "seconds": seconds,
            "language": result.language if result else None,
            "with_found": [s for s in entry["with"] if normal(s) in text],
            "with_missed": [s for s in entry["with"] if normal(s) not in text],
            "without_kept": [s for s in entry["without"] if normal(s) in text],
            "without_total": len(entry["without"]),
            "title": result.title if result else None,
            "judged_title": entry.get("title") or None,
            "date": result.date if result else None,
            "judged_date": entry.get("date") or None,
        }
        row["title_right"] = bool(row["judged_title"]) and title_right(
            row["title"], row["judged_title"]
        )
        row["date_right"] = bool(row["judged_date"]) and row["date"] == row["judged_date"]
        rows.append(row)

    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    with_found = sum(len(r["with_found"]) for r in rows)
    with_total = with_found + sum(len(r["with_missed"]) for r in rows)
    without_total = sum(r["without_total"] for r in rows)
    without_dropped = without_total - sum(len(r["without_kept"]) for r in rows)
    titles = [r for r in rows if r["judged_title"]]
    dates = [r for r in rows if r["judged_date"]]
    titles_right = sum(1 for r in titles if r["title_right"])
    dates_right = sum(1 for r in dates if r["date_right"])
    extracted = sum(1 for r in rows if r["error"] is None)
    return {
        "pages": len(rows),
        "extracted": extracted,
        "failures": [r["file"] for r in rows if r["error"] is not None],
        "with_found": with_found,
        "with_total": with_total,
        "kept": share(with_found, with_total),
        "without_dropped": without_dropped,
        "without_total": without_total,
        "dropped": share(without_dropped, without_total),
        "titles_right": titles_right,
        "titles_judged": len(titles),
        "title": share(titles_right, len(titles)),
        "dates_right": dates_right,
        "dates_judged": len(dates),
        "date": share(dates_right, len(dates)),
        "ms_per_page": 1000 * sum(r["seconds"] for r in rows) / len(rows),
        "rows": rows,
    }


def _cell(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part} / {whole})" if whole else f"– (0 / {whole})"


def summary_rows(figures: dict[str, Any]) -> dict[str, str]:
    """The table of docs/formats.md, "Extraction quality": measure -> value as written."""
    return {
        "main text kept (judged sentences found)": _cell(
            figures["with_found"], figures["with_total"]
        ),
        "boilerplate dropped (judged boilerplate absent)": _cell(
            figures["without_dropped"], figures["without_total"]
        ),
        "title right (pages with a judged title)": _cell(
            figures["titles_right"], figures["titles_judged"]
        ),
        "date right (pages with a judged date)": _cell(
            figures["dates_right"], figures["dates_judged"]
        ),
        "pages extracted (no ExtractionError)": _cell(figures["extracted"], figures["pages"]),
    }


def _short(value: str | None, width: int = 40) -> str:
    if value is None:
        return "–"
    value = value.replace("|", "\\|")
    return value if len(value) <= width else value[: width - 1] + "…"


def report(figures: dict[str, Any]) -> None:
    print("| page | lang | with found | without kept | title | date | ms |")
    print("|---|---|---:|---:|---|---|---:|")
    for r in figures["rows"]:
        found = f"{len(r['with_found'])}/{len(r['with_found']) + len(r['with_missed'])}"
        kept = f"{len(r['without_kept'])}/{r['without_total']}"
        title = "–" if not r["judged_title"] else "ok" if r["title_right"] else "WRONG"
        date = "–" if not r["judged_date"] else "ok" if r["date_right"] else "WRONG"
        if r["error"]:
            title = date = f"FAILED: {r['error']}"
        print(
            f"| {_short(r['file'])} | {r['language'] or '–'} | {found} | {kept} | {title} "
            f"| {date} | {1000 * r['seconds']:.0f} |"
        )
    print("\nMisses (for review):")
    for r in figures["rows"]:
        for s in r["with_missed"]:
            print(f"- {r['file']}: main text missed: {_short(s, 80)!r}")
        for s in r["without_kept"]:
            print(f"- {r['file']}: boilerplate kept: {_short(s, 80)!r}")
        if r["judged_title"] and not r["title_right"]:
            print(f"- {r['file']}: title {r['title']!r}, judged {r['judged_title']!r}")
        if r["judged_date"] and not r["date_right"]:
            print(f"- {r['file']}: date {r['date']!r}, judged {r['judged_date']!r}")
    print("\n| measure | value |\n|---|---:|")
    for label, value in summary_rows(figures).items():
        print(f"| {label} | {value} |")
    print(f"\nfailures: {', '.join(figures['failures']) or 'none'}")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"mean extraction time: {figures['ms_per_page']:.0f} ms per page ({machine})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=PAGES, help="pages + judgements.json")
    parser.add_argument("--select", type=Path, metavar="TESTS", help="trafilatura's tests/")
    parser.add_argument("--evaldata", type=Path, help="evaldata.json (default: TESTS/...)")
    args = parser.parse_args()
    if args.select is not None:
        evaldata = json.loads(
            (args.evaldata or args.select / "evaldata.json").read_text(encoding="utf-8")
        )
        write_fixtures(evaldata, args.select, args.pages)
        return
    report(measure(args.pages))


if __name__ == "__main__":
    main()
