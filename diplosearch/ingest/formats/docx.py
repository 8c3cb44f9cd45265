"""Word documents (.docx), by python-docx: headings, paragraphs and tables, in order.

python-docx is the maintained reader of the Office Open XML format; it gives paragraph
styles (so headings are told apart), tables cell by cell and the core properties (title,
creation date), which serve when the text itself names no title or date. A .docx is a
zip archive: before python-docx opens one, its members' unpacked sizes are checked, so a
zip bomb is refused instead of filling memory.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from diplosearch.ingest.formats import Extracted, ExtractionError

#: Most bytes a Word file may unpack to (all members together).
MAX_UNPACKED = 256 * 1024 * 1024
#: Most a member may unpack to per byte packed, beyond a megabyte: text compresses about
#: 10:1; a zip bomb by thousands.
MAX_RATIO = 200
_SPACE_RE = re.compile(r"\s+")


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExtractionError(f"not a Word document: not a readable zip archive ({exc})") from exc
    if "word/document.xml" not in names:
        raise ExtractionError("not a Word document: a zip archive without word/document.xml")
    unpacked = sum(member.file_size for member in members)
    bomb = any(
        member.file_size > 1 << 20 and member.file_size > MAX_RATIO * max(1, member.compress_size)
        for member in members
    )
    if unpacked > MAX_UNPACKED or bomb:
        raise ExtractionError(
            f"the Word file unpacks to {unpacked / 2**20:,.0f} MB from "
            f"{len(data) / 2**20:,.1f} MB (a zip bomb?); refused"
        )


def _clean(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


#: WordprocessingML's namespace, as lxml spells its tags.
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
#: Containers whose content is the document's own (a content control, custom XML): read
#: through, as Word shows their text.
_WRAPPERS = (f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml")


def _paragraph_text(paragraph: Any) -> str:
    """All the text Word shows in a paragraph: runs, hyperlinks, tracked insertions,
    fields, content controls and smart tags alike (python-docx's ``text`` skips some);
    deleted text (``w:delText``) is not shown, tabs and breaks are spaces."""
    parts: list[str] = []
    for node in paragraph.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        parts.append(node.text or "" if node.tag == f"{_W}t" else " ")
    return _clean("".join(parts))


def _body(container: Any) -> list[Any]:
    """The paragraphs and tables of ``container``, in order, through content controls."""
    items: list[Any] = []
    for child in container.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            items.append(child)
        elif child.tag in _WRAPPERS:
            items.extend(_body(child))
    return items


def _blocks(document: Any) -> tuple[list[str], str | None]:
    """(paragraphs, with headings as Markdown headings; the text in the Title style)."""
    from docx.text.paragraph import Paragraph

    blocks: list[str] = []
    title: str | None = None
    for element in _body(document.element.body):
        if element.tag == f"{_W}tbl":
            for row in element.iter(f"{_W}tr"):
                cells: list[str] = []
                for cell in row.iter(f"{_W}tc"):
                    text = _clean(" ".join(_paragraph_text(p) for p in cell.iter(f"{_W}p")))
                    if text and (not cells or cells[-1] != text):  # merged cells repeat
                        cells.append(text)
                if cells:
                    blocks.append(" | ".join(cells))
            continue
        text = _paragraph_text(element)
        if not text:
            continue
        style = Paragraph(element, document).style
        name = (style.name if style is not None else "") or ""
        if name == "Title" and title is None:
            title = text
        elif name.startswith("Heading"):
            level = name.removeprefix("Heading").strip()
            depth = int(level) if level.isdigit() and 1 <= int(level) <= 6 else 2
            blocks.append(f"{'#' * depth} {text}")
        else:
            blocks.append(text)
    return blocks, title


def extract(data: bytes) -> Extracted:
    """The document's text and core properties; :class:`ExtractionError` for a file that
    is not a Word document, is damaged, or unpacks to too much."""
    _check_archive(data)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
        blocks, styled_title = _blocks(document)
        properties = document.core_properties
        title = _clean(properties.title or "") or None
        created = properties.created
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ExtractionError(f"the Word document is damaged ({exc})") from exc
    except Exception as exc:
        raise ExtractionError(f"the Word document is damaged ({type(exc).__name__})") from exc
    return Extracted(
        format="docx",
        text="\n\n".join(blocks) + "\n",
        title=styled_title or title,
        fallback_date=created.date().isoformat() if created is not None else None,
    )
