"""Ingest: from the files of a corpus folder to cited passages.

``corpus`` finds and fingerprints the documents, ``formats`` extracts text and metadata
from each file type (text, Markdown, HTML, PDF, Word), ``language`` and ``dates`` read
what language a document is in and when it was written, and ``chunker`` (with
``metadata``, ``sentences`` and ``speakers``) splits it into the passages the index stores.
"""
