"""Metadata of an opened bid document, for the regulator's collusion signs (identical authoring traces).

Bids written by one hand for several bidders often share their document's author, creating tool and
timestamps. Only the fields that say who made the file and with what are kept; the content is not
read. PDFs are read with poppler's `pdfinfo` (a Debian package the setup installs: a real PDF parser,
compressed object streams included); OOXML files (docx, xlsx) from their `docProps/core.xml` and
`docProps/app.xml`. Anything else, or a file these cannot read, has no metadata.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from xml.etree import ElementTree

PDF_FIELDS = {"Author": "author", "Creator": "creator", "Producer": "producer", "CreationDate": "created",
              "ModDate": "modified"}
OOXML_FIELDS = {"creator": "author", "lastModifiedBy": "last_modified_by", "created": "created",
                "modified": "modified", "Application": "creator", "Company": "company"}
MAX_FIELD = 200


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()[:MAX_FIELD]


def pdf_metadata(content: bytes) -> dict[str, str]:
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is None:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(content)
        handle.flush()
        try:
            shown = subprocess.run([pdfinfo, "-isodates", handle.name], capture_output=True, timeout=20, check=False)
        except subprocess.TimeoutExpired:
            return {}
    if shown.returncode != 0:
        return {}
    found = {}
    for line in shown.stdout.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition(":")
        if name in PDF_FIELDS and _clean(value):
            found[PDF_FIELDS[name]] = _clean(value)
    return found


def ooxml_metadata(content: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for part in ("docProps/core.xml", "docProps/app.xml"):
                if part not in archive.namelist() or archive.getinfo(part).file_size > 1_000_000:
                    continue
                for element in ElementTree.fromstring(archive.read(part)).iter():
                    local = element.tag.rsplit("}", 1)[-1]
                    if local in OOXML_FIELDS and element.text and _clean(element.text):
                        found[OOXML_FIELDS[local]] = _clean(element.text)
    except (zipfile.BadZipFile, ElementTree.ParseError, KeyError, OSError):
        return {}
    return found


def metadata_of(path: Path) -> dict[str, str]:
    """The authoring metadata of the document at `path` (empty when it has none or cannot be read)."""
    try:
        content = path.read_bytes()
    except OSError:
        return {}
    if content.startswith(b"%PDF-"):
        return pdf_metadata(content)
    if content.startswith(b"PK\x03\x04"):
        return ooxml_metadata(content)
    return {}
