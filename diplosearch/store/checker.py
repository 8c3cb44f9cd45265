"""Checking the index, like Lucene's CheckIndex: every checksum, count and vector of the
live and previous generations and of their query encoder, and what lies around them."""

from __future__ import annotations

import numpy as np

from diplosearch.errors import (
    AccessError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    unreadable,
)
from diplosearch.lexical import LOCK_FILES
from diplosearch.store import files
from diplosearch.store.files import DAMAGED
from diplosearch.store.loaded import document_matrix
from diplosearch.store.reader import IndexReader
from diplosearch.store.records import CURRENT, MANIFEST


class IndexChecker:
    """Checks the index folder its ``reader`` reads."""

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self.root = reader.root

    def verify(self) -> tuple[list[str], list[str]]:
        """Check everything, like Lucene's CheckIndex: (problems, facts checked). What
        cannot be read is a problem; what this user may not read raises
        :class:`AccessError` instead: the index may be sound, and saying so is not ours."""
        problems: list[str] = []
        checked: list[str] = []
        try:
            self._verify(problems, checked)
        except OSError as exc:
            error = unreadable(exc.filename or self.root, exc)
            if isinstance(error, AccessError):
                raise error from exc
            problems.append(str(error))
        return problems, checked

    def _verify(self, problems: list[str], checked: list[str]) -> None:
        try:
            pointer = self.reader.require_pointer()
        except (IndexMissingError, IndexCorruptError, IndexMismatchError) as exc:
            problems.append(str(exc))
            return
        generations = [pointer.live] + ([pointer.previous] if pointer.previous else [])
        for role, (name, sha) in zip(("live", "previous"), generations, strict=False):
            try:
                loaded = self.reader.load_generation(name, sha, full=True)
            except (IndexCorruptError, IndexMismatchError) as exc:
                problems.append(f"{role} generation {name}: {exc}")
                continue
            try:
                for row in range(len(loaded.chunks)):
                    loaded.sentence_vectors_of(row)  # parses the row, checks its sentences
            except IndexCorruptError as exc:
                problems.append(f"{role} generation {name}: {exc}")
                continue
            vectors = loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal)
            documents = np.asarray(loaded.document_vectors)
            # A document without chunks has a zero vector; every other one is unit length.
            documents = documents[np.linalg.norm(documents, axis=1) > 0]
            for label, matrix in (
                ("vectors", vectors),
                ("sentence vectors", loaded.sentence_vectors),
                ("document vectors", documents),
            ):
                if not np.isfinite(matrix).all():
                    problems.append(f"{role} generation {name}: {label} hold NaN or infinity")
                elif len(matrix) and np.abs(np.linalg.norm(matrix, axis=1) - 1).max() > 1e-3:
                    problems.append(f"{role} generation {name}: {label} are not unit length")
            try:
                expected = document_matrix(loaded.manifest, loaded.chunks, vectors)
            except ValueError as exc:
                problems.append(f"{role} generation {name}: {exc}")
                expected = np.asarray(loaded.document_vectors)
            if not np.allclose(expected, loaded.document_vectors, atol=1e-5):
                problems.append(
                    f"{role} generation {name}: document vectors are not the means of their "
                    "chunks' vectors"
                )
            try:
                loaded.lexical()
            except IndexCorruptError as exc:
                problems.append(f"{role} generation {name}: {exc}")
            finally:
                loaded.close()
            folder = self.root / name
            expected = {MANIFEST, *loaded.manifest.files}
            extra = sorted(  # Tantivy readers leave an empty lock file: not data
                path
                for p in folder.rglob("*")
                if not p.is_dir()
                and (path := p.relative_to(folder).as_posix()) not in expected
                and p.name not in LOCK_FILES
            )
            if extra:
                problems.append(f"{role} generation {name}: unexpected files {', '.join(extra)}")
            damage = self.reader.encoder_damage(loaded.manifest, full=True)
            if damage is not None:
                problems.append(f"{role} generation {name}: {damage}")
            checked.append(
                f"{role} generation {name}: {len(loaded.manifest.sources)} documents, "
                f"{loaded.manifest.chunks} chunks in a {loaded.manifest.index_type} index, "
                f"{len(loaded.manifest.files) + 1} files checksummed, and "
                f"{len(loaded.manifest.encoder_files)} of its query encoder"
            )
        known = {name for name, _ in generations}
        for entry in sorted(self.reader.names()):
            if files.GENERATION_RE.match(entry) and entry not in known:
                checked.append(
                    f"note: {entry} is not named by {CURRENT} (an interrupted "
                    "commit); the next build removes it"
                )
            elif entry.startswith(".tmp-"):
                checked.append(
                    f"note: {entry} is left by an interrupted build; the next build removes it"
                )
            elif entry.startswith(DAMAGED):
                kind = "pointer" if CURRENT in entry else "generation"
                problems.append(f"damaged {kind} set aside: {entry} (inspect or delete it)")
