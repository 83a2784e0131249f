"""A user's prompt file: records.Prompt rows, or the TRL rows users have (ids derived when absent); bad rows are one
line naming the file and the line."""

import json
import re

import pytest

from autoalign.errors import UserError
from autoalign.prompt_sources import read_prompt_file
from autoalign.records import stable_id


def _write(tmp_path, rows, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_trl_rows_read_as_prompts(tmp_path):
    path = _write(tmp_path, [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"prompt": "What is 2 + 2?"},
        {"id": "x", "messages": [{"role": "user", "content": "own id"}]},
        "",
    ])
    rows = read_prompt_file(path)
    assert [r.messages[-1]["content"] for r in rows] == ["hi", "What is 2 + 2?", "own id"]
    assert rows[0].messages == [{"role": "user", "content": "hi"}] and rows[2].id == "x"
    assert rows[0].id == read_prompt_file(path)[0].id != rows[1].id  # ids are stable hashes of the text
    assert {r.source for r in rows[:2]} == {"file"}


def test_messages_row_keeps_the_system_turn_and_the_last_user_turn(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    path = _write(tmp_path, [{"messages": [system, {"role": "user", "content": "first"},
                                            {"role": "assistant", "content": "a1"},
                                            {"role": "user", "content": "second"},
                                            {"role": "assistant", "content": "a2"}]}])
    (row,) = read_prompt_file(path)
    assert row.messages == [system, {"role": "user", "content": "second"}]
    assert row.text == "second"


def test_prompt_column_as_text_or_chat_with_other_trl_columns_ignored(tmp_path):
    chat = [{"role": "user", "content": "Name a colour."}]
    path = _write(tmp_path, [
        {"prompt": chat, "completion": [{"role": "assistant", "content": "Red."}]},
        {"prompt": "Say hi.", "chosen": "Hi.", "rejected": "No.", "category": "greeting"},
        {"prompt": "Add 2 and 3.", "axis": "helpful", "family": "arith", "env": {"kind": "calc", "expr": "2 + 3"}},
    ])
    a, b, c = read_prompt_file(path)
    assert a.messages == chat and b.messages == [{"role": "user", "content": "Say hi."}]
    assert (c.axis, c.family, c.env) == ("helpful", "arith", {"kind": "calc", "expr": "2 + 3"})


def test_derived_ids_are_deterministic_and_the_same_for_the_same_prompt(tmp_path):
    """The id is a function of the prompt's messages only: a text row and the same chat give one id, and another
    file with the row gives it too."""
    p1 = _write(tmp_path, [{"prompt": "Why is the sky blue?"}], "a.jsonl")
    p2 = _write(tmp_path, [{"messages": [{"role": "user", "content": "Why is the sky blue?"},
                                         {"role": "assistant", "content": "Rayleigh scattering."}]}], "b.jsonl")
    expected = stable_id(json.dumps([{"role": "user", "content": "Why is the sky blue?"}], sort_keys=True))
    assert read_prompt_file(p1)[0].id == read_prompt_file(p2)[0].id == expected


def test_the_same_prompt_twice_is_read_once_but_a_repeated_given_id_is_an_error(tmp_path):
    same = _write(tmp_path, [{"prompt": "q"}, {"prompt": "other"}, {"prompt": "q"}])
    assert [r.text for r in read_prompt_file(same)] == ["q", "other"]
    dup = _write(tmp_path, [{"id": "a", "prompt": "q"}, {"id": "a", "prompt": "r"}], "dup.jsonl")
    with pytest.raises(UserError, match=r"dup.jsonl: line 2: id 'a' repeats line 1"):
        read_prompt_file(dup)


@pytest.mark.parametrize("content,match", [
    (b'{"prompt": 3}\n', "line 1: prompt: expected a string or a non-empty list"),
    (b'{"prompt": "ok"}\n{"messages": [{"role": "assistant", "content": "x"}]}\n', "line 2: messages: no user turn"),
    (b'{"messages": ["hello"]}\n', "line 1: messages.0: expected a message"),
    (b'{"text": "hello"}\n', 'line 1: expected a "messages" or a "prompt" field'),
    (b'{"id": "x", "messages": "hi"}\n', "line 1: messages: Input should be a valid list"),
    (b'{"prompt": "q", "axis": "funny"}\n', "line 1: axis:"),
    (b'not json\n', "line 1: not JSON"),
    (b'[1, 2]\n', "line 1: (row)"),
    (b'\xff\xfe\n', "not UTF-8"),
    (b'\n', "no prompts"),
])
def test_bad_prompt_files_are_one_line(tmp_path, content, match):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(match)) as err:
        read_prompt_file(path)
    assert "\n" not in str(err.value) and "p.jsonl" in str(err.value)
