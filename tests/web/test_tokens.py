"""The tokens that open `queuectl web`: the file's format, its checks, matching."""

from __future__ import annotations

import pytest

from queuectl_tui.errors import UsageError
from queuectl_tui.web.tokens import Tokens, generate, parse, read_token_file

ALICE = "a" * 10 + "-Alice_token.1"
BOB = "Bob~token-0123456789"


def test_named_and_bare_tokens_comments_and_blank_lines():
    assert parse(f"# the team\n\nalice:{ALICE}\n  bob:{BOB}  \n") == {"alice": ALICE, "bob": BOB}
    assert parse(f"{ALICE}\n") == {"web": ALICE}


@pytest.mark.parametrize("text, says", [
    ("alice:short\n", "16 to 256 characters"),
    (f"alice:{ALICE}\nalice:{BOB}\n", "the name alice is given twice"),
    (f"alice:{ALICE}\nbob:{ALICE}\n", "also another name's"),
    (f"al ice:{ALICE}\n", "a name is"),
    (f"alice:{ALICE}&x=1\n", "a token is letters"),
    ("# nothing\n\n", "has no token"),
])
def test_a_bad_file_is_refused_with_its_line_and_never_the_token(text, says):
    with pytest.raises(UsageError, match=says) as caught:
        parse(text, "tokens.txt")
    assert ALICE not in str(caught.value) and BOB not in str(caught.value)


def test_a_file_others_may_read_is_refused(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"alice:{ALICE}\n")
    path.chmod(0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        read_token_file(str(path))
    path.chmod(0o600)
    assert read_token_file(str(path)).by_name == {"alice": ALICE}
    with pytest.raises(UsageError, match="cannot read"):
        read_token_file(str(tmp_path / "missing"))


def test_matching():
    tokens = Tokens({"alice": ALICE, "bob": BOB})
    assert tokens.match(ALICE) == "alice"
    assert tokens.match(BOB) == "bob"
    assert tokens.match(ALICE[:-1]) is None
    assert tokens.match("") is None
    assert tokens.match("é\udcff") is None  # anything a URL may carry, compared safely


def test_a_made_up_token_is_long_and_new_each_time():
    one, two = generate(), generate()
    assert one.generated and one.names == ["web"]
    assert len(one.secrets[0]) >= 40 and one.secrets != two.secrets
