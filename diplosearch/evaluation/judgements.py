"""Judgement files: which passages answer which question, graded 0, 1 or 2.

A judgement is (document, text the judged passage contains, grade), so it stays valid
whatever the chunking: a result covers it when the result, or a copy folded into it,
comes from that document and contains that text (case and white space ignored). Grade 2
is a passage that answers the question, 1 one that touches it, 0 one that was read and
does not; a two-element entry ``[source, text]`` is grade 2 (the original binary sets).
Grade-0 judgements matter: they tell a judged miss from a result nobody has read.

Each question may carry its ``split``, ``dev`` (parameters are chosen there) or ``test``
(results are reported there), fixed when the question is written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diplosearch.errors import JudgementsError

SPLITS = ("dev", "test")
GRADES = (0, 1, 2)
#: The grade a binary ``[source, text]`` entry stands for.
RELEVANT = 2


@dataclass(frozen=True)
class Judgement:
    source: str
    text: str
    grade: int


@dataclass(frozen=True)
class Judged:
    """One question and every passage judged for it."""

    query: str
    judgements: tuple[Judgement, ...]
    split: str | None = None
    kind: str | None = None

    @property
    def relevant(self) -> tuple[Judgement, ...]:
        """The passages that answer the question (grade 2)."""
        return tuple(j for j in self.judgements if j.grade == RELEVANT)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _judgement(entry: Any) -> Judgement:
    if not isinstance(entry, list) or len(entry) not in (2, 3):
        raise ValueError(f"a judgement is [source, text] or [source, text, grade], not {entry!r}")
    grade = int(entry[2]) if len(entry) == 3 else RELEVANT
    if grade not in GRADES or not str(entry[1]).strip():
        raise ValueError(f"bad judgement {entry!r}: grade 0, 1 or 2 and a text")
    return Judgement(source=str(entry[0]), text=str(entry[1]), grade=grade)


def load(path: Path, split: str | None = None) -> list[Judged]:
    """The questions of a judgement file (of one ``split``, if given)::

    {"queries": [{"query": str, "split": "dev"|"test",
                  "relevant": [[source, text], [source, text, grade], ...]}, ...]}
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        judged = [
            Judged(
                query=str(item["query"]),
                judgements=tuple(_judgement(e) for e in item["relevant"]),
                split=item.get("split"),
                kind=item.get("kind"),
            )
            for item in data["queries"]
        ]
    except OSError as exc:
        raise JudgementsError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise JudgementsError(f"malformed judgements in {path}: {exc!r}") from exc
    if not judged or any(not j.relevant or not j.query.strip() for j in judged):
        raise JudgementsError(f"{path}: every query needs a text and a passage of grade 2")
    if any(j.split not in (None, *SPLITS) for j in judged):
        raise JudgementsError(f"{path}: a query's split must be one of {', '.join(SPLITS)}")
    if split is not None:
        judged = [j for j in judged if j.split == split]
        if not judged:
            raise JudgementsError(f"{path} has no {split} questions")
    return judged


def covered(passages: Iterable[tuple[str, str]], judgements: Sequence[Judgement]) -> set[int]:
    """Indexes of the judgements that any of ``passages`` (source, text) covers."""
    texts = [(source, normalise(text)) for source, text in passages]
    return {
        i
        for i, j in enumerate(judgements)
        for source, text in texts
        if source == j.source and normalise(j.text) in text
    }


def merge(path: Path, graded: Iterable[dict[str, Any]]) -> int:
    """Add graded passages (``{"query", "source", "text", "grade"}``, as :mod:`.pool`
    writes them with a grade filled in) to the judgement file at ``path``; returns how
    many were new. The file is replaced atomically."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        by_query = {item["query"]: item for item in data["queries"]}
        added = 0
        for item in graded:
            entry = [str(item["source"]), str(item["text"]), int(item["grade"])]
            _judgement(entry)
            target = by_query[item["query"]]
            known = {(e[0], normalise(e[1])) for e in target["relevant"]}
            if (entry[0], normalise(entry[1])) not in known:
                target["relevant"].append(entry)
                added += 1
    except OSError as exc:
        raise JudgementsError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise JudgementsError(f"cannot merge into {path}: {exc!r}") from exc
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(dump(data), encoding="utf-8")
    os.replace(staged, path)
    return added


def dump(data: dict[str, Any]) -> str:
    """A judgement file as text: one line per judgement, so that diffs stay readable."""
    head = {k: v for k, v in data.items() if k != "queries"}
    lines = ["{"] + [
        f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()
    ]
    lines.append('  "queries": [')
    queries = data["queries"]
    for n, item in enumerate(queries):
        meta = {k: v for k, v in item.items() if k != "relevant"}
        lines.append("    " + json.dumps(meta, ensure_ascii=False)[:-1] + ', "relevant": [')
        entries = item["relevant"]
        for m, entry in enumerate(entries):
            comma = "," if m < len(entries) - 1 else ""
            lines.append("      " + json.dumps(entry, ensure_ascii=False) + comma)
        lines.append("    ]}" + ("," if n < len(queries) - 1 else ""))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
