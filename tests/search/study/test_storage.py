"""Storage URLs: a password is never shown."""

from __future__ import annotations

import pytest

from search.errors import StorageError
from search.study.storage import make_storage, shown_url


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://lenet:hunter2@127.0.0.1:5432/db", "postgresql://lenet:***@127.0.0.1:5432/db"),
        ("mysql+pymysql://a:b%40c@host/d", "mysql+pymysql://a:***@host/d"),
        ("postgresql://lenet@host/db", "postgresql://lenet@host/db"),
        ("sqlite:///studies/lenet.db", "sqlite:///studies/lenet.db"),
        ("bad://u:hunter2@h:notaport/db", "bad://u:***@h:notaport/db"),
    ],
)
def test_shown_url_masks_only_the_password(url, shown):
    assert shown_url(url) == shown


def test_an_unreachable_server_is_named_without_its_password():
    with pytest.raises(StorageError) as caught:
        make_storage("postgresql://lenet:hunter2@127.0.0.1:1/db")  # nothing listens on port 1
    assert "hunter2" not in str(caught.value) and "lenet:***@127.0.0.1:1/db" in str(caught.value)


def test_a_url_that_cannot_be_parsed_is_refused_without_its_password():
    with pytest.raises(StorageError) as caught:
        make_storage("postgresql://lenet:hunter2@127.0.0.1:notaport/db")
    assert "hunter2" not in str(caught.value) and "cannot be parsed" in str(caught.value)
