"""Child names: valid for their kind, stable in the common case, and never shared by two (workshop,
participant) pairs, over adversarial pairs (dots and dashes, owner/participant splits, long names cut,
names spelled like another's hash)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

import pytest

from troupe_workshop.names import Instance, child_name, ingress_name

Pair = tuple[str, str | None]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

KINDS: dict[str, Callable[[Instance], str]] = {
    "Deployment": lambda i: i.deployment,
    "Service": lambda i: i.service,
    "PersistentVolumeClaim": lambda i: i.claim,
    "Secret": lambda i: i.secret,
}


def valid_workshop(name: str) -> bool:
    """What the API server accepts as a Workshop's metadata.name."""
    return len(name) <= 253 and bool(SUBDOMAIN.match(name))


def valid_participant(name: str) -> bool:
    """What spec.participantNames accepts (a DNS label of at most 40 characters, not rstudio)."""
    return len(name) <= 40 and bool(DNS1123_LABEL.match(name)) and name != "rstudio"


def splits(text: str) -> Iterable[Pair]:
    """``text`` as a single-instance workshop, and as every (workshop, participant) cut at a dash."""
    yield text, None
    for m in re.finditer("-+", text):
        yield text[: m.start()], text[m.end() :]
        yield text[: m.start()], text[m.start() + 1 :]


def adversarial_pairs() -> set[Pair]:
    pieces = ["a", "b", "w", "x", "1", "9z", "team", "p1", "rstudio", "home", "password", "ws"]
    texts = set(pieces)
    for a in pieces:
        for b in pieces:
            for sep in ("-", ".", "--", "---"):
                texts.add(f"{a}{sep}{b}")
    texts |= {f"team{sep}x{sep2}y" for sep in "-." for sep2 in ("-", ".", "--")}
    # long names: equal up to the cut, differing after it, or by one character at the limits
    for n in (39, 40, 41, 42, 43, 44, 52, 53, 54, 55, 56, 60, 61, 62, 63, 64, 65, 100, 252):
        texts |= {"a" * n, "a" * (n - 1) + "b", "1" * n, "a" * (n - 2) + ".b", "a" * (n - 2) + "-b"}
    rng = random.Random(9)
    texts |= {"".join(rng.choice("ab1-.") for _ in range(rng.randint(1, 70))) for _ in range(1500)}

    pairs: set[Pair] = set()
    for text in texts:
        pairs |= set(splits(text))
    # names spelled like another pair's hashed name, as a workshop or a participant
    for w, p in sorted(pairs, key=str)[:400]:
        for spelled in (child_name(w, p), child_name(w, p, "-home"), child_name(w, p, service=True)):
            pairs |= {(spelled, None), ("w", spelled)}
            pairs |= set(splits(spelled))
    # every workshop with a sample of every participant
    workshops = sorted({w for w, _ in pairs if valid_workshop(w)})
    participants = sorted({p for _, p in pairs if p and valid_participant(p)})
    pairs |= {(w, p) for w in rng.sample(workshops, 150) for p in rng.sample(participants, 80)}
    return {
        (w, p)
        for w, p in pairs
        if valid_workshop(w) and (p is None or valid_participant(p) or re.fullmatch(r"p[0-9]{1,3}", p))
    }


PAIRS = adversarial_pairs()


def test_the_corpus_is_adversarial() -> None:
    assert len(PAIRS) > 10_000
    assert {("team.x", None), ("team-x", None), ("w-a", None), ("w", "a")} <= PAIRS
    assert any(len(w) > 200 for w, _ in PAIRS) and any("---" in w for w, _ in PAIRS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_two_pairs_share_a_child_name_of_a_kind(kind: str) -> None:
    seen: dict[str, Pair] = {}
    for pair in PAIRS:
        name = KINDS[kind](Instance(*pair))
        assert seen.setdefault(name, pair) == pair, f"{kind} {name}: {seen[name]} and {pair}"


def test_ingress_names_are_one_per_workshop() -> None:
    workshops = {w for w, _ in PAIRS}
    assert len({ingress_name(w) for w in workshops}) == len(workshops)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_name_is_valid_for_its_kind(kind: str) -> None:
    pattern = DNS1035_LABEL if kind == "Service" else DNS1123_LABEL
    for pair in PAIRS:
        name = KINDS[kind](Instance(*pair))
        assert len(name) <= 63 and pattern.match(name), (kind, pair, name)


def test_selectors_keep_workshops_and_participants_apart() -> None:
    selectors: dict[tuple[tuple[str, str], ...], Pair] = {}
    for pair in PAIRS:
        labels = Instance(*pair).selector
        assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in labels.values()), labels
        key = tuple(sorted(labels.items()))
        assert selectors.setdefault(key, pair) == pair


def test_the_common_case_keeps_its_names() -> None:
    single = Instance("intro", None)
    assert (single.deployment, single.service, single.claim, single.secret) == (
        "intro",
        "intro",
        "intro-home",
        "intro-password",
    )
    assert ingress_name("intro") == "intro"
    assert single.selector == {"orchestra.io/workshop": "intro", "orchestra.io/participant": "rstudio"}
    ada = Instance("intro", "ada")
    assert (ada.deployment, ada.service, ada.claim, ada.secret) == (
        "intro--ada",
        "intro--ada",
        "intro--ada-home",
        "intro--ada-password",
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("team.x", None), ("team-x", None)),
        (("w-a", None), ("w", "a")),
        (("w-a", "b"), ("w", "a-b")),
        (("a" * 60 + "b", None), ("a" * 60 + "c", None)),
        (("a--b", None), ("a", "b")),
    ],
)
def test_the_reported_collisions_are_apart(one: Pair, other: Pair) -> None:
    for kind, name in KINDS.items():
        assert name(Instance(*one)) != name(Instance(*other)), kind


def test_a_name_that_cannot_be_plain_is_readable_and_hashed() -> None:
    assert re.fullmatch(r"team-x---[0-9a-f]{8}", child_name("team.x", None))
    assert re.fullmatch(r"team-x---[0-9a-f]{8}-home", child_name("team.x", None, "-home"))
    # a Service starts with a letter: a workshop named 1st gets a prefixed, hashed Service name
    assert child_name("1st", None) == "1st"
    assert re.fullmatch(r"ws-1st---[0-9a-f]{8}", child_name("1st", None, service=True))
    long = child_name("x" * 250, "p1", "-password")
    assert len(long) == 63 and long.startswith("x" * 40) and long.endswith("-password")
