from __future__ import annotations

import pytest

from tierwise.errors import ConfigError
from tierwise.files import read_user_text


def test_every_way_a_file_can_be_wrong_is_a_message(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text('{"x": 1}\n')
    assert read_user_text(good, "a JSONL file") == '{"x": 1}\n'
    with pytest.raises(ConfigError, match=r"--workload .*nope.jsonl: file not found"):
        read_user_text(tmp_path / "nope.jsonl", "a JSONL file", label="--workload")
    with pytest.raises(ConfigError, match=r"not a file \(expected a JSONL file\)"):
        read_user_text(tmp_path, "a JSONL file")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(expected a JSONL file\)"):
        read_user_text(binary, "a JSONL file")
