"""The published .proto never breaks its clients: checked against a committed baseline.

Both files are compiled by grpcio-tools' protoc into descriptors; every message field of
the baseline must still exist with its number, type and label, no number may be reused
for another field, and every rpc must still exist with its request, response and
streaming shape. The generated modules must also match the .proto they came from.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "agentstore" / "server" / "agentstore.proto"
BASELINE = Path(__file__).parent / "proto_baseline" / "agentstore.v1.proto"


def compile_proto(path: Path, work: Path) -> descriptor_pb2.FileDescriptorProto:
    """Compile one .proto with protoc and return its descriptor."""
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, src / "agentstore.proto")
    out = work / "set.pb"
    code = protoc.main(
        ["protoc", f"-I{src}", f"--descriptor_set_out={out}", str(src / "agentstore.proto")]
    )
    assert code == 0, f"protoc failed on {path}"
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return files.file[0]


def _messages(fd: descriptor_pb2.FileDescriptorProto) -> dict[str, descriptor_pb2.DescriptorProto]:
    found: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(prefix: str, messages: list[descriptor_pb2.DescriptorProto]) -> None:
        for msg in messages:
            name = f"{prefix}{msg.name}"
            found[name] = msg
            walk(f"{name}.", list(msg.nested_type))

    walk("", list(fd.message_type))
    return found


def breaking_changes(
    old: descriptor_pb2.FileDescriptorProto, new: descriptor_pb2.FileDescriptorProto
) -> list[str]:
    """List every change from `old` to `new` that breaks a client built from `old`."""
    problems: list[str] = []
    if old.package != new.package:
        problems.append(f"package {old.package} became {new.package}")
    new_messages = _messages(new)
    for name, msg in _messages(old).items():
        now = new_messages.get(name)
        if now is None:
            problems.append(f"message {name} removed")
            continue
        by_number = {f.number: f for f in now.field}
        by_name = {f.name: f for f in now.field}
        for field in msg.field:
            current = by_name.get(field.name)
            if current is None:
                problems.append(f"{name}.{field.name} removed")
                continue
            if current.number != field.number:
                problems.append(
                    f"{name}.{field.name} renumbered {field.number} -> {current.number}"
                )
            if (current.type, current.type_name, current.label) != (
                field.type,
                field.type_name,
                field.label,
            ):
                problems.append(f"{name}.{field.name} changed type or label")
            reused = by_number.get(field.number)
            if reused is not None and reused.name != field.name:
                problems.append(f"{name}: number {field.number} reused by {reused.name}")
    new_services = {s.name: s for s in new.service}
    for service in old.service:
        now_service = new_services.get(service.name)
        if now_service is None:
            problems.append(f"service {service.name} removed")
            continue
        methods = {m.name: m for m in now_service.method}
        for method in service.method:
            current_m = methods.get(method.name)
            if current_m is None:
                problems.append(f"rpc {service.name}.{method.name} removed")
                continue
            shape = (
                method.input_type,
                method.output_type,
                method.client_streaming,
                method.server_streaming,
            )
            now_shape = (
                current_m.input_type,
                current_m.output_type,
                current_m.client_streaming,
                current_m.server_streaming,
            )
            if shape != now_shape:
                problems.append(f"rpc {service.name}.{method.name} changed its signature")
    return problems


def test_the_published_proto_keeps_every_field_and_rpc_of_the_baseline(tmp_path: Path) -> None:
    old = compile_proto(BASELINE, tmp_path / "old")
    new = compile_proto(PROTO, tmp_path / "new")
    assert old.package == "agentstore.v1"
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("  int64 sequence_number = 3;", "  int64 sequence_number = 30;"), "renumbered 3 -> 30"),
        (("  bytes payload_json = 5;\n  string timestamp", "  string timestamp"), "removed"),
        (
            ("  rpc GetStats(GetStatsRequest) returns (StatsResponse);\n", ""),
            "rpc AgentStore.GetStats removed",
        ),
        (("  int64 event_count = 5;", "  int32 event_count = 5;"), "changed type"),
    ],
    ids=["renumbered", "field-removed", "rpc-removed", "type-changed"],
)
def test_a_breaking_edit_of_the_proto_is_caught(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    text = PROTO.read_text()
    old_text, new_text = edit
    assert old_text in text
    broken = tmp_path / "broken.proto"
    broken.write_text(text.replace(old_text, new_text, 1))
    problems = breaking_changes(
        compile_proto(PROTO, tmp_path / "old"), compile_proto(broken, tmp_path / "new")
    )
    assert any(expected in p for p in problems), problems


def test_adding_a_field_is_not_a_breaking_change(tmp_path: Path) -> None:
    text = PROTO.read_text()
    grown = tmp_path / "grown.proto"
    grown.write_text(
        text.replace("  bytes extra_json = 10;", "  bytes extra_json = 10;\n  string x = 11;")
    )
    assert (
        breaking_changes(compile_proto(PROTO, tmp_path / "a"), compile_proto(grown, tmp_path / "b"))
        == []
    )


def test_the_generated_module_was_made_from_the_committed_proto(tmp_path: Path) -> None:
    from agentstore.server import agentstore_pb2

    generated = descriptor_pb2.FileDescriptorProto()
    agentstore_pb2.DESCRIPTOR.CopyToProto(generated)
    current = compile_proto(PROTO, tmp_path / "now")
    generated.name = current.name  # the generated one is named by its path in the repo
    current.ClearField("source_code_info")
    for msg in _messages(current).values():  # the generated module does not keep these
        for field in msg.field:
            field.ClearField("json_name")
    assert generated == current, "agentstore_pb2.py is stale: run `make proto` and commit"
