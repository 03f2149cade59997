"""Label selectors in Kubernetes' syntax (``troupe run --selector``), matched against an object's labels.

The operator's own kinds are watched whole and filtered here (kopf has no server-side selector), so an
installation can take only the objects labelled for it: ``tilt``'s cluster-wide operators take only
their namespace's examples, not another installation's objects on a shared cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: A label key: an optional DNS subdomain prefix and a name of at most 63 characters.
_KEY = r"(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
_SET = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_REQUIREMENT = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<absent>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>{_VALUE})|\s(?P<setop>in|notin)\s*(?P<set>{_SET}))?)\s*$"
)

Labels = Mapping[str, str]


class SelectorError(ValueError):
    """A selector that is not valid Kubernetes label selector syntax."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, absent, in, notin
    values: frozenset[str] = frozenset()

    def __call__(self, labels: Labels) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "absent":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # notin: an absent key matches, as in Kubernetes


def _split(text: str) -> list[str]:
    """Requirements are separated by commas outside the parentheses of a set."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_selector(text: str) -> Callable[[Labels], bool]:
    """A predicate over labels for ``text`` (``a=b,c!=d,e,!f,g in (h,i),j notin (k)``); raises
    :class:`SelectorError` naming the requirement that is not valid."""
    requirements = []
    for part in _split(text) if text.strip() else []:
        match = _REQUIREMENT.match(part)
        if match is None:
            raise SelectorError(f"not a label selector requirement: {part.strip()!r} (in {text!r})")
        if match["absent"]:
            requirements.append(Requirement(match["absent"], "absent"))
        elif match["op"]:
            op = "notin" if match["op"] == "!=" else "in"
            requirements.append(Requirement(match["key"], op, frozenset({match["value"]})))
        elif match["setop"]:
            values = frozenset(v.strip() for v in match["set"].strip("() \t").split(","))
            requirements.append(Requirement(match["key"], match["setop"], values))
        else:
            requirements.append(Requirement(match["key"], "exists"))
    return lambda labels: all(requirement(labels) for requirement in requirements)
