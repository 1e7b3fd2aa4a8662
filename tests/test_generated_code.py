"""Generated gRPC code must match protos/: regenerate into a temporary folder and compare."""

from __future__ import annotations

import filecmp
from pathlib import Path

from scripts.gen_protos import DEFAULT_OUT, PACKAGE, generate


def test_generated_code_is_up_to_date(tmp_path: Path):
    fresh = generate(tmp_path)
    committed = DEFAULT_OUT / PACKAGE
    names = sorted(p.name for p in fresh)
    assert names == sorted(
        p.name
        for p in committed.iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"))
    ), "generated file set differs from protos/: run `make proto`"
    stale = [
        name for name in names if not filecmp.cmp(tmp_path / PACKAGE / name, committed / name, shallow=False)
    ]
    assert not stale, f"stale generated code, run `make proto`: {stale}"


def test_every_message_and_field_is_documented():
    """The contracts are the product's API: every message, field, enum value and RPC has a comment."""
    undocumented = []
    for proto in sorted((Path(__file__).parent.parent / "protos").rglob("*.proto")):
        lines = proto.read_text().splitlines()
        for number, line in enumerate(lines):
            stripped = line.strip()
            is_decl = stripped.startswith(("message ", "rpc ", "enum ", "service ")) or (
                "=" in stripped
                and stripped.endswith(";")
                and not stripped.startswith(("syntax", "option ", "import", "package", "//"))
            )
            if not is_decl:
                continue
            previous = lines[number - 1].strip() if number else ""
            if "//" in stripped or previous.startswith("//"):
                continue
            undocumented.append(f"{proto.name}:{number + 1}: {stripped}")
    assert not undocumented, "undocumented declarations:\n" + "\n".join(undocumented)
