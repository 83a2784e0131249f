"""A user's prompt file: records.Prompt rows, or plain TRL rows without an id; bad rows are one line."""

import pytest

from autoalign.errors import UserError
from autoalign.prompt_sources import read_prompt_file


def test_trl_rows_read_as_prompts(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                    '{"prompt": "What is 2 + 2?"}\n'
                    '{"id": "x", "messages": [{"role": "user", "content": "own id"}]}\n\n')
    rows = read_prompt_file(path)
    assert [r.messages[-1]["content"] for r in rows] == ["hi", "What is 2 + 2?", "own id"]
    assert rows[0].messages == [{"role": "user", "content": "hi"}] and rows[2].id == "x"
    assert rows[0].id == read_prompt_file(path)[0].id != rows[1].id  # ids are stable hashes of the text


@pytest.mark.parametrize("content,match", [
    (b'{"prompt": 3}\n', "line 1: messages"),
    (b'not json\n', "line 1: not JSON"),
    (b'\xff\xfe\n', "not UTF-8"),
    (b'\n', "no prompts"),
])
def test_bad_prompt_files_are_one_line(tmp_path, content, match):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match) as err:
        read_prompt_file(path)
    assert "\n" not in str(err.value)
