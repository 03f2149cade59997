"""The third-party example in docs/architecture.md is the code the tests run, character for character."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_doc_example_is_the_tested_plugin() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    match = re.search(r"<!-- example: (\S+) -->\n```python\n(.*?)```", doc, re.S)
    assert match, "docs/architecture.md lost its example block"
    assert match.group(2) == (ROOT / match.group(1)).read_text()


def test_hook_table_lists_every_hook_with_its_signature() -> None:
    import inspect

    from troupe import hookspecs

    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| `(troupe_\w+)\(([^)]*)\)` \|", doc, re.M))
    specs = {
        name: ", ".join(inspect.signature(fn).parameters)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "troupe_spec")
    }
    assert rows == specs
