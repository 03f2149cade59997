"""Import kopf without the Kubernetes client libraries it looks for.

kopf imports every client library it finds installed (kubernetes, kubernetes_asyncio, pykube) at its own
import, only to recognise their model objects in ``kopf.adopt`` and friends. Troupe hands kopf dicts only,
and those imports cost 66 MiB of memory for kubernetes_asyncio alone (its generated models), plus seconds
of start-up on a loaded machine. They are hidden while kopf is imported and importable again afterwards.
"""

from __future__ import annotations

import sys

_CLIENTS = ("kubernetes", "kubernetes_asyncio", "pykube")


def import_kopf_alone() -> None:
    if "kopf" in sys.modules:
        return
    hidden = [name for name in _CLIENTS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # importing it raises ImportError
    try:
        import kopf  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


import_kopf_alone()
