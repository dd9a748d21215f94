"""Write the hostile stack file corpus: ``tests/fuzz/stackfiles/<case>.yaml``
and ``expected.json`` (case -> a fragment the one ``error:`` line must hold).

Every case is a broken copy of ``tests/fuzz/base.yaml`` (a frozen copy of
``Pulumi.prod.yaml``: the corpus does not move when the shipped stack does),
built by a plain function of that text, so running this script again writes
the same bytes::

    .venv/bin/python tests/fuzz/make_stackfiles.py

Each case is one class of input that once hung ``azml plan`` or ended it
with a traceback, or a neighbour of one: they must all be refused with exit
2 and one line (tests/cli/test_hostile_input.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
BASE = HERE / "base.yaml"
OUT = HERE / "stackfiles"

Build = Callable[[str], bytes]


def _u(text: str) -> bytes:
    return text.encode("utf-8")


def _insert_config(base: str, lines: str) -> str:
    """``lines`` (indented for the config mapping) right after ``config:``."""
    return base.replace("config:\n", "config:\n" + lines, 1)


def _laughs(namespace: str, levels: int = 9, width: int = 9) -> str:
    """Billion laughs: ``width ** levels`` values from a few hundred bytes."""
    lines = [f"  {namespace}lol0: &l0 [{', '.join(['lol'] * width)}]\n"]
    for level in range(1, levels):
        items = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"  {namespace}lol{level}: &l{level} [{items}]\n")
    return "".join(lines)


def _nested_block(depth: int) -> str:
    return "".join(f"{'  ' * (level + 1)}level{level}:\n" for level in range(depth)) + f"{'  ' * (depth + 1)}end\n"


CASES: dict[str, tuple[Build, str]] = {
    # Alias expansion, under azml:, another namespace, and outside config.
    "alias-bomb-azml": (lambda b: _u(_insert_config(b, _laughs("azml:"))), "values once aliases are expanded"),
    "alias-bomb-other-namespace": (lambda b: _u(_insert_config(b, _laughs("other:"))), "other:lol"),
    "alias-bomb-top-level": (lambda b: _u(b + _laughs("").replace("  lol", "lol")), "values once aliases are expanded"),
    "alias-text-bomb": (
        lambda b: _u(_insert_config(b, f"  other:big: &big {'x' * 60_000}\n  other:copies: [{', '.join(['*big'] * 9)}]\n")),
        "KiB of text once aliases are expanded",
    ),
    "alias-recursive-list": (lambda b: _u(_insert_config(b, "  azml:tags: &a [*a]\n")), "azml:tags[0]: alias *a is inside its own anchor"),
    "alias-recursive-map": (lambda b: _u(_insert_config(b, "  other:x: &m {self: *m}\n")), "other:x.self: alias *m"),
    "alias-undefined": (lambda b: _u(_insert_config(b, "  azml:prefix: *nowhere\n")), "alias *nowhere has no anchor"),
    "alias-of-map-as-key": (lambda b: _u(_insert_config(b, "  other:m: &m {a: 1}\n  ? *m\n  : 2\n")), "used as a key"),
    # Encodings and bytes.
    "latin1-in-comment": (lambda b: b.replace("# Production", "# Production caf\xe9", 1).encode("latin-1"), "byte 0xe9 is not UTF-8"),
    "latin1-in-value": (lambda b: b.replace("owner: ml-platform-team", "owner: \xe9quipe", 1).encode("latin-1"), "line 9: byte 0xe9"),
    "utf16-with-bom": (lambda b: b.encode("utf-16"), "UTF-16"),
    "utf32-with-bom": (lambda b: b.encode("utf-32"), "UTF-32"),
    "truncated-utf8": (lambda b: _u(b + "  other:x: caf\xe9")[:-1], "unexpected end of data"),
    "nul-byte": (lambda b: _u(b.replace("azml:prefix: azml", "azml:prefix: az\0ml", 1)), "U+0000"),
    "bell-character": (lambda b: _u(b.replace("owner: ml-platform-team", "owner: ml\a", 1)), "U+0007"),
    # Tags: only JSON's types.
    "tag-set": (lambda b: _u(_insert_config(b, "  azml:tags: !!set {a, b}\n")), "azml:tags: tag !!set is not allowed"),
    "tag-binary": (lambda b: _u(_insert_config(b, "  other:blob: !!binary aGVsbG8=\n")), "tag !!binary"),
    "tag-omap": (lambda b: _u(_insert_config(b, "  other:o: !!omap [a: 1]\n")), "tag !!omap"),
    "tag-python-object": (lambda b: _u(_insert_config(b, "  other:p: !!python/object/apply:os.system [true]\n")), "tag !!python/object/apply:os.system"),
    "tag-custom": (lambda b: _u(_insert_config(b, "  azml:prefix: !Ref prefix\n")), "tag !Ref"),
    "tag-directive": (lambda b: _u("%TAG !e! tag:example.com,2000:\n---\n" + b.replace("azml:prefix: azml", "azml:prefix: !e!name azml", 1)), "tag:example.com,2000:name"),
    # Numbers.
    "integer-5000-digits": (lambda b: _u(b.replace("maxNodes: 20", "maxNodes: " + "9" * 5000, 1)), "a number of 5000 characters"),
    "infinite-alert-threshold": (
        lambda b: _u(b.replace("serverErrors: {thresholdPerMinute: 5,", "serverErrors: {thresholdPerMinute: .inf,", 1)),
        "azml:alerts.serverErrors.thresholdPerMinute: Input should be a finite number",
    ),
    "inf-word-alert-threshold": (
        lambda b: _u(b.replace("serverErrors: {thresholdPerMinute: 5,", "serverErrors: {thresholdPerMinute: inf,", 1)),
        "azml:alerts.serverErrors.thresholdPerMinute",
    ),
    "nan-alert-threshold": (
        lambda b: _u(b.replace("serverErrors: {thresholdPerMinute: 5,", "serverErrors: {thresholdPerMinute: .nan,", 1)),
        "azml:alerts.serverErrors.thresholdPerMinute: Input should be a finite number",
    ),
    # Nesting.
    "deep-flow-lists": (lambda b: _u(_insert_config(b, "  other:x: " + "[" * 3000 + "]" * 3000 + "\n")), "brackets open at once"),
    "deep-flow-maps": (lambda b: _u(_insert_config(b, "  other:x: " + "{a: " * 3000 + "}" * 3000 + "\n")), "brackets open at once"),
    "deep-block-mappings": (lambda b: _u(_insert_config(b, "  other:deep:\n" + _nested_block(40).replace("\n", "\n  ")[:-2])), "nested more than 32 levels deep"),
    "many-values": (lambda b: _u(_insert_config(b, "  other:list: [" + "1," * 6_000 + "1]\n")), "more than 5,000 values"),
    # Size.
    "huge-string": (lambda b: _u(_insert_config(b, f"  azml:prefix: {'a' * 132_000}\n")), "larger than 128 KiB"),
    "huge-comment-file": (lambda b: _u(b + "# padding\n" * 12_500), "larger than 128 KiB"),
    # Keys.
    "duplicate-config": (lambda b: _u(b + "config:\n  azml:prefix: other\n"), "key 'config' appears twice"),
    "duplicate-azml-key": (lambda b: _u(_insert_config(b, "  azml:prefix: evil\n")), "key 'azml:prefix' appears twice"),
    "duplicate-nested-key": (lambda b: _u(b.replace("    hbi: true\n", "    hbi: true\n    hbi: false\n", 1)), "azml:workspace: key 'hbi' appears twice"),
    "anchor-on-key-duplicated": (lambda b: _u(_insert_config(b, "  &k other:a: 1\n  *k : 2\n")), "key 'other:a' appears twice"),
    "complex-key": (lambda b: _u(_insert_config(b, "  ? [azml:prefix]\n  : x\n")), "a mapping or list used as a key"),
    "integer-key": (lambda b: _u(b.replace("    cost-center: ml-platform\n", "    1: ml-platform\n", 1)), "azml:tags: key 1 is read as a number, not a string"),
    "boolean-key": (lambda b: _u(_insert_config(b, "  true: yes\n")), "key true is read as a boolean"),
    "null-key": (lambda b: _u(_insert_config(b, "  ~: nothing\n")), "key null is read as a null value"),
    "merge-key-of-scalar": (lambda b: _u(b.replace("    hbi: true\n", "    <<: 1\n    hbi: true\n", 1)), "invalid YAML"),
    # Documents and layout.
    "several-documents": (lambda b: _u(b + "---\nconfig:\n  azml:prefix: second\n"), "more than one YAML document"),
    "empty-file": (lambda b: b"", "holds no YAML document"),
    "only-comments": (lambda b: _u("".join(line + "\n" for line in b.splitlines() if line.lstrip().startswith("#"))), "holds no YAML document"),
    "tab-indentation": (lambda b: _u(b.replace("  azml:prefix: azml", "\tazml:prefix: azml", 1)), "invalid YAML"),
    "bom-and-crlf-and-tag": (lambda b: b"\xef\xbb\xbf" + _u(_insert_config(b, "  other:s: !!set {a}\n").replace("\n", "\r\n")), "tag !!set"),
    "not-a-mapping": (lambda b: _u("- config\n- " + b.splitlines()[1] + "\n"), "must be a mapping with a 'config' key"),
}


def build(base: str) -> dict[str, bytes]:
    return {name: make(base) for name, (make, _) in CASES.items()}


def write(out: Path = OUT, base_path: Path = BASE) -> dict[str, str]:
    """Write every case and ``expected.json`` into ``out``; returns the expectations."""
    base = base_path.read_text(encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    for name, data in build(base).items():
        (out / f"{name}.yaml").write_bytes(data)
    expected = {name: fragment for name, (_, fragment) in CASES.items()}
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return expected


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
