"""Whatever a user writes, validation answers with problems; it never raises.

Documents are the seed's canaries with random values put, replaced or removed at random places, or random
mappings dressed as a Canary; they go through YAML text and the loader as a user's files would.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canaryflow.api import crds, loader, validate
from canaryflow.api.canary import Canary

SEED = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio"
SEEDS = [yaml.safe_load((SEED / "apps" / app / "canary.yaml").read_text()) for app in ("backend", "frontend")]


def _names(schema: dict[str, Any]) -> set[str]:
    names = set(schema.get("properties", {}))
    for sub in [*schema.get("properties", {}).values(), schema.get("items"), schema.get("additionalProperties")]:
        if isinstance(sub, dict):
            names |= _names(sub)
    return names


# Real field names make the random keys land on fields (wrong types, wrong places) as often as on typos.
FIELD_NAMES = sorted(_names(crds.openapi_schema(Canary)))
keys = st.sampled_from(FIELD_NAMES) | st.text(min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["15s", "1m", "Deployment", "http://x/", "", "istio", "-1", "true"])
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


def places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in ``node``."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += places(value, (*path, index))
    return found


@st.composite
def mutated_canaries(draw: st.DrawFn) -> dict[str, Any]:
    canary: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(places(canary)[1:]))
        parent = canary
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(keys)] = draw(values)
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(values))
    return canary


random_canaries = st.fixed_dictionaries(
    {"apiVersion": st.just("flagger.app/v1beta1"), "kind": st.just("Canary")},
    optional={"metadata": values, "spec": st.dictionaries(keys, values, max_size=6), "status": values},
)


def assert_answers(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    loaded = loader.load_text(text, "fuzz.yaml")
    lines = text.count("\n") + 1
    for doc in loaded.documents:
        checked = validate.check(doc)
        assert (checked.resource is not None) + bool(checked.problems) + (checked.skipped is not None) == 1
        for problem in checked.problems:
            assert 1 <= problem.line <= lines
            assert re.match(rf"fuzz\.yaml:{problem.line}: .+/.*: \S", str(problem)), str(problem)
        if isinstance(checked.resource, Canary):
            # A valid canary survives the round trip through the shape Kubernetes stores.
            again = Canary.model_validate(checked.resource.to_dict(), strict=True, by_name=False)
            assert again == checked.resource


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_canaries())
def test_mutated_seed_canaries_get_an_answer(document: dict[str, Any]) -> None:
    assert_answers(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_canaries)
def test_random_canary_shaped_documents_get_an_answer(document: dict[str, Any]) -> None:
    assert_answers(document)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@?,` \n\tab01")), max_size=60))
def test_arbitrary_text_is_loaded_or_reported(text: str) -> None:
    loaded = loader.load_text(text, "noise.yaml")
    lines = text.count("\n") + 1
    # What cannot be read is reported at a line of the text, naming the file, with a reason.
    for problem in loaded.problems:
        assert 1 <= problem.line <= lines, str(problem)
        assert re.fullmatch(rf"noise\.yaml:{problem.line}: \S.*", str(problem), re.S), str(problem)
    # Every document read gets exactly one answer, at a line of the text.
    for document in loaded.documents:
        checked = validate.check(document)
        assert (checked.resource is not None) + bool(checked.problems) + (checked.skipped is not None) == 1
        assert all(1 <= problem.line <= lines for problem in checked.problems), checked.problems


def test_a_null_metadata_field_is_unset_and_the_canary_round_trips() -> None:
    """Found by the fuzzing above: ``metadata: {note: null}`` was kept as an extra field that ``to_dict`` then left
    out, so the canary read back from its own dict differed from the one validated."""
    document = copy.deepcopy(SEEDS[0])
    document["metadata"]["note"] = None
    document["metadata"]["uid"] = None
    assert_answers(document)
    checked = validate.check(loader.load_text(yaml.safe_dump(document), "null.yaml").documents[0])
    assert isinstance(checked.resource, Canary)
    assert "note" not in checked.resource.metadata.model_dump() and checked.resource.metadata.uid is None
