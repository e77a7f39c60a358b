"""MkDocs hook: the site's home page is the README, so the front page has one source.

Links into the site (`docs/PAGE.md`) become page links and the benchmarks chart comes from `docs/assets/` (a link
to `benchmarks/compare.svg`); any other relative link in the README would point outside the site and fails
`mkdocs build --strict`, as a broken link should.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

REPOSITORY = Path(__file__).resolve().parents[2]


def home_page(readme: str) -> str:
    text = readme.replace("](docs/", "](").replace("](benchmarks/compare.svg)", "](assets/compare.svg)")
    return re.sub(r"\bthis README\b", "this documentation", text)


def on_files(files, config):
    existing = files.get_file_from_path("index.md")
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, "index.md", content=home_page((REPOSITORY / "README.md").read_text())))
    return files
