"""Reading YAML: files, directories, streams and stdin, with the line of every key, and no crash on bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from canaryflow.api import loader

TWO_DOCS = """\
# a comment before the first document
apiVersion: v1
kind: Namespace
metadata:
  name: prod
---
apiVersion: flagger.app/v1beta1
kind: Canary
spec:
  analysis:
    metrics:
      - name: error-rate
        thresholdRange:
          max: 1
"""


def test_every_document_of_a_stream_keeps_its_starting_line() -> None:
    loaded = loader.load_text(TWO_DOCS, "two.yaml")
    assert loaded.problems == []
    assert [(d.source, d.line, d.body["kind"]) for d in loaded.documents] == [
        ("two.yaml", 2, "Namespace"),
        ("two.yaml", 7, "Canary"),
    ]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(("spec", "analysis", "metrics", 0, "thresholdRange", "max"), 14, id="existing-key"),
        pytest.param(("spec", "analysis", "metrics", 0), 12, id="list-item"),
        pytest.param(("spec", "analysis", "stepWeight"), 10, id="missing-key-uses-parent"),
        pytest.param(("nothing", "here"), 7, id="nothing-uses-document-start"),
    ],
)
def test_the_line_of_a_path_is_its_deepest_existing_key(path: tuple[str | int, ...], line: int) -> None:
    canary = loader.load_text(TWO_DOCS, "two.yaml").documents[1]
    assert canary.line_of(path) == line


def test_values_are_plain_json_like_data_read_as_kubernetes_reads_yaml() -> None:
    text = "a: yes\nb: 0755\nc: 2024-01-02\nd: !Ref name\ne: 1.5\nf: '8080'\n"
    body = loader.load_text(text, "x.yaml").documents[0].body
    assert body == {"a": True, "b": 493, "c": "2024-01-02", "d": "name", "e": 1.5, "f": "8080"}
    assert type(body) is dict and type(body["e"]) is float


def test_merge_keys_and_anchors_are_expanded() -> None:
    text = "base: &b {port: 80}\nservice:\n  <<: *b\n  name: x\n"
    document = loader.load_text(text, "x.yaml").documents[0]
    assert document.body["service"] == {"name": "x", "port": 80}
    assert document.line_of(("service", "port")) == 3  # a merged key is where the mapping merging it starts


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param("a: 1\nb: [1, 2\nc: 3\n", 3, "malformed YAML", id="unclosed-flow-list"),
        pytest.param("a: 1\n  b: 2\n", 2, "malformed YAML", id="bad-indentation"),
        pytest.param("a: 1\na: 2\n", 2, 'duplicate key "a"', id="duplicate-key"),
        pytest.param("a: *nowhere\n", 1, "malformed YAML", id="unknown-alias"),
        pytest.param("? [a, b]\n: c\n", 1, "a list or mapping used as a key", id="list-as-key"),
        pytest.param("a: 'unterminated\n", 2, "malformed YAML", id="unterminated-quote"),
    ],
)
def test_malformed_yaml_is_a_problem_with_its_line(text: str, line: int, fragment: str) -> None:
    loaded = loader.load_text(text, "bad.yaml")
    assert loaded.documents == []
    [problem] = loaded.problems
    assert (problem.source, problem.line) == ("bad.yaml", line)
    assert fragment in problem.message
    assert str(problem).startswith(f"bad.yaml:{line}: ")


def test_a_broken_document_leaves_the_others_of_its_stream_readable() -> None:
    text = "a: 1\n---\nb: [1\n---\nc: 3\n"
    loaded = loader.load_text(text, "mixed.yaml")
    assert [d.body for d in loaded.documents] == [{"a": 1}, {"c": 3}]
    assert [p.line for p in loaded.problems] == [4]


def test_empty_documents_and_comments_only_streams_yield_nothing() -> None:
    loaded = loader.load_text("# nothing\n---\n---\n# still nothing\n", "empty.yaml")
    assert loaded.documents == [] and loaded.problems == []


def test_a_directory_is_read_recursively_in_sorted_order_skipping_hidden_folders(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("b.yml", "kind: B\n")
    write("a/z.yaml", "kind: AZ\n")
    write("a.yaml", "kind: A\n")
    write("notes.txt", "kind: Text\n")
    write(".github/workflow.yaml", "kind: Hidden\n")
    loaded = loader.load_paths([str(tmp_path)])
    assert [d.body["kind"] for d in loaded.documents] == ["AZ", "A", "B"]
    assert loaded.documents[0].source == str(tmp_path / "a" / "z.yaml")


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch, write: Callable[[str, str], Path]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("kind: FromStdin\n"))
    file = write("f.yaml", "kind: FromFile\n")
    loaded = loader.load_paths([str(file), "-"])
    assert [(d.source, d.body["kind"]) for d in loaded.documents] == [
        (str(file), "FromFile"),
        ("<stdin>", "FromStdin"),
    ]


def test_paths_that_cannot_be_read_are_problems(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"kind: \xff\xfe\n")
    (tmp_path / "empty-dir").mkdir()
    loaded = loader.load_paths([str(tmp_path / "missing.yaml"), str(binary), str(tmp_path / "empty-dir")])
    assert [p.message for p in loaded.problems] == [
        "no such file or directory",
        "not UTF-8 text (invalid start byte at byte 6)",
        "no *.yaml or *.yml files in this directory",
    ]
