"""Settings from the environment, and an ASSISTANT_HOME that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import Settings
from models.base import BadInput


def test_defaults_and_overrides():
    s = Settings.from_env({})
    assert s.device == "auto" and s.max_new_tokens == 256 and s.memory_gb == 8.0
    s = Settings.from_env(
        {
            "ASSISTANT_HOME": "/tmp/x",
            "ASSISTANT_MEMORY_GB": "2.5",
            "ASSISTANT_TEXT_MODEL": "qwen2.5-1.5b-instruct",
        }
    )
    assert s.home == Path("/tmp/x") and s.memory_gb == 2.5
    assert s.text_model == "qwen2.5-1.5b-instruct" and s.ledger_path == Path("/tmp/x/ledger.sqlite")


def test_the_database_url_is_the_one_switch_to_shared_state():
    assert Settings.from_env({}).database_url is None  # SQLite files in ASSISTANT_HOME
    assert Settings.from_env({"ASSISTANT_DATABASE_URL": ""}).database_url is None
    url = "postgresql://a:b@db:5432/assistant"
    assert Settings.from_env({"ASSISTANT_DATABASE_URL": url}).database_url == url


def test_the_shared_folder_holds_uploads_and_kept_documents_only():
    alone = Settings.from_env({"ASSISTANT_HOME": "/h"})
    assert alone.uploads_dir == Path("/h/uploads")
    assert alone.kept_dir == Path("/h/documents/files")
    shared = Settings.from_env({"ASSISTANT_HOME": "/h", "ASSISTANT_SHARED_DIR": "/mnt/s"})
    assert shared.uploads_dir == Path("/mnt/s/uploads")
    assert shared.kept_dir == Path("/mnt/s/documents")
    # Everything else stays on the machine: SQLite is not safe on a network mount.
    assert shared.ledger_path == Path("/h/ledger.sqlite")
    assert shared.documents_dir == Path("/h/documents")


@pytest.mark.parametrize("value", ["lots", "-1", "0"])
def test_a_bad_number_names_the_variable(value):
    with pytest.raises(BadInput, match="ASSISTANT_MAX_NEW_TOKENS"):
        Settings.from_env({"ASSISTANT_MAX_NEW_TOKENS": value})


def test_an_unusable_home_names_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # A path under a regular file can never be created, even by root (tests
    # run as root here, and root ignores permission bits).
    settings = Settings(home=blocker / "home")
    with pytest.raises(BadInput, match="ASSISTANT_HOME=.*not a writable folder") as err:
        settings.ensure_home()
    assert "ASSISTANT_HOME=$HOME/.assistant" in str(err.value)


def test_a_relative_home_is_made_absolute(tmp_path, monkeypatch):
    # A relative home broke pack conversion once: symlinks made inside it
    # resolved against their own folder. Settings now pins it at start.
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"ASSISTANT_HOME": "data"}).home == tmp_path / "data"


@pytest.mark.parametrize("value", ["1", "on", "True", "YES"])
def test_a_public_server_is_public_however_it_is_spelled(value):
    # "on" and "True" read as off before: a server meant for strangers ran as a private one.
    assert Settings.from_env({"ASSISTANT_PUBLIC": value}).public is True


def test_a_public_switch_that_is_neither_on_nor_off_stops_the_start():
    assert Settings.from_env({"ASSISTANT_PUBLIC": "off"}).public is False
    assert Settings.from_env({}).public is False
    with pytest.raises(BadInput, match="ASSISTANT_PUBLIC='maybe' is neither on nor off"):
        Settings.from_env({"ASSISTANT_PUBLIC": "maybe"})
