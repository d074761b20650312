from app.analysis.text import (
    STOPWORDS,
    content_words,
    excerpt,
    is_sentence_end,
    sentences,
    shared_prose,
    strip_code,
    vocabulary,
    words,
)

TRACEBACK = """I keep getting this and I'm stuck:

Traceback (most recent call last):
  File "/app/main.py", line 42, in <module>
    main()
  File "/app/main.py", line 12, in main
    data = json.loads(raw)
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)

Any idea what is wrong?"""


def test_strip_code_removes_python_traceback_but_keeps_the_prose_around_it() -> None:
    prose = strip_code(TRACEBACK)
    assert "I keep getting this and I'm stuck:" in prose
    assert "Any idea what is wrong?" in prose
    for machine in ("Traceback", "File", "main()", "json.loads", "JSONDecodeError"):
        assert machine not in prose


def test_strip_code_removes_fenced_blocks_and_inline_code() -> None:
    text = "Try this:\n```python\ndef broken():\n    raise ValueError('no')\n```\nthen run `make test` again."
    prose = strip_code(text)
    assert "def broken" not in prose
    assert "ValueError" not in prose
    assert "make test" not in prose
    assert "Try this:" in prose
    assert "again." in prose


def test_strip_code_removes_shell_session_and_log_lines() -> None:
    text = (
        "Here is what happens:\n"
        "$ curl -s http://localhost:8000/data\n"
        "curl: (7) Failed to connect to localhost port 8000\n"
        "\n"
        "2026-03-02 10:15:03,120 ERROR worker crashed\n"
        "FATAL ERROR: heap out of memory\n"
        "    at Object.<anonymous> (/srv/index.js:10:5)\n"
        "npm ERR! code ELIFECYCLE\n"
        "Segmentation fault (core dumped)\n"
        "Nothing works and I am tired."
    )
    prose = strip_code(text)
    assert "Here is what happens:" in prose
    assert "Nothing works and I am tired." in prose
    for machine in ("curl", "crashed", "FATAL", "heap", "Object", "ELIFECYCLE", "Segmentation"):
        assert machine not in prose


def test_strip_code_ends_command_output_at_a_line_of_prose() -> None:
    text = "$ pip install foo\nCollecting foo\nERROR: no matching distribution\nStill broken, what should I do?"
    assert strip_code(text) == "Still broken, what should I do?"


def test_strip_code_keeps_prose_that_mentions_errors() -> None:
    text = "I got a TypeError when calling the API, and the error message was confusing."
    assert strip_code(text) == text


def test_sentences_respect_abbreviations_lists_and_short_answers() -> None:
    text = (
        'See e.g. the docs. Then ask Dr. Lee about it! He said "fine." No. That is wrong.\n\n'
        "Steps:\n- install it\n- run it\n1. first\n2. second"
    )
    assert sentences(text) == [
        "See e.g. the docs.",
        "Then ask Dr. Lee about it!",
        'He said "fine."',
        "No.",
        "That is wrong.",
        "Steps:",
        "- install it",
        "- run it",
        "1. first",
        "2. second",
    ]


def test_sentences_do_not_split_versions_or_lowercase_continuations() -> None:
    assert sentences("Upgrade to 3.11.7 first. it works then.") == [
        "Upgrade to 3.11.7 first. it works then."
    ]
    assert sentences("") == []


def test_is_sentence_end_follows_the_same_rule_as_sentences() -> None:
    assert is_sentence_end("docs.", "Then")
    assert is_sentence_end("it!", "and") is False
    assert is_sentence_end("e.g.", "The") is False
    assert is_sentence_end('"fine."', "No")
    assert is_sentence_end("done?", None)
    assert is_sentence_end("word,", "Next") is False


def test_words_and_content_words_are_lowercased_ordered_and_filtered() -> None:
    text = "Docker's bridge network can't reach the Database container 2 times, I think."
    assert words(text) == [
        "docker's",
        "bridge",
        "network",
        "can't",
        "reach",
        "the",
        "database",
        "container",
        "2",
        "times",
        "i",
        "think",
    ]
    assert content_words(text) == [
        "docker",
        "bridge",
        "network",
        "reach",
        "database",
        "container",
        "times",
    ]
    assert {"the", "can't", "think", "i"} <= STOPWORDS


def test_vocabulary_is_the_set_of_content_words() -> None:
    text = "Bridge network, bridge NETWORK and the 42 containers."
    assert vocabulary(text) == frozenset({"bridge", "network", "containers"})


def test_excerpt_collapses_whitespace_and_cuts_at_a_word_boundary() -> None:
    text = "word   " * 60
    cut = excerpt(text, limit=50)
    assert len(cut) <= 50
    assert cut.endswith("…")
    assert cut[:-1].split() == ["word"] * len(cut[:-1].split())
    assert "  " not in cut
    assert excerpt("  short\n\ttext ") == "short text"
    # Unicode spaces and separators collapse too: a non-breaking space, a line separator.
    assert excerpt("a\u00a0\u00a0b\u2028c \x1c d") == "a b c d"


def test_excerpt_masks_personal_data_before_cutting() -> None:
    # The address straddles the cut: masking first means no part of it survives.
    text = "Please write to " + "x" * 5 + " jonathan.appleseed@example.com about it"
    cut = excerpt(text, limit=30)
    assert "jonathan" not in cut
    assert "example" not in cut
    assert len(cut) <= 30
    assert excerpt("mail me at ana@example.org") == "mail me at [email]"


def test_shared_prose_gives_each_text_its_own_prose() -> None:
    texts = [TRACEBACK, "Plain prose only.", "Run `pip install x` then retry.", TRACEBACK]
    alone = [strip_code(t) for t in texts]
    with shared_prose():
        first = [strip_code(t) for t in texts]
        again = [strip_code(t) for t in reversed(texts)]
    assert first == alone
    assert again == alone[::-1]
    assert "Traceback" not in first[0]
    assert "pip install" not in first[2]
