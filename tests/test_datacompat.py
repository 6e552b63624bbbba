"""parity.datacompat: which image may open data another image wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity import model
from parity.datacompat import (Written, check, forget, incompatibility, is_image_id, recalled,
                               remember, split_image, version)
from parity.errors import InputError, InputErrors
from parity.model import Selection

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("image, expected", [
    ("postgres:16.4-bookworm", ("postgres", "16.4-bookworm")),
    ("postgres", ("postgres", "latest")),
    ("localhost:5000/team/postgres", ("localhost:5000/team/postgres", "latest")),
    ("localhost:5000/team/postgres:15", ("localhost:5000/team/postgres", "15")),
    ("redis:7.4@sha256:" + "0" * 64, ("redis", "7.4")),
])
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_version():
    assert version("16.4-bookworm") == (16, 4)
    assert version("v1.9.1") == (1, 9, 1)
    assert version("bookworm") is None


@pytest.mark.parametrize("old, new, reason", [
    ("postgres:16.4-bookworm", "postgres:16.4-bookworm", None),
    ("postgres:16.4-bookworm", "postgres:16.6-bookworm", None),  # upgrade in the major
    ("postgres:16.4-bookworm", "parity-offline/postgres:15-bookworm",
     "another image repository"),
    ("postgres:16.4", "postgres:15.8", "major version 16 -> 15"),
    ("postgres:15.8", "postgres:16.4", "major version 15 -> 16"),
    ("redis:7.4.1-bookworm", "redis:7.0-bookworm", "a downgrade 7.4.1 -> 7.0"),
    ("nats:latest", "nats:edge", None),  # tags the team owns, not versions
    ("nats:2.10", "nats:latest", None),
])
def test_incompatibility(old, new, reason):
    assert incompatibility(old, new) == reason


def _stack(profile: str):
    return model.load(ROOT, Selection("compose", 2, profile=profile)).stack


def test_check_refuses_a_profile_switch_and_names_the_layer_that_set_the_image():
    written = [Written("postgres", "volume parity_postgres-data", "postgres:16.4-bookworm",
                       "docker run … tar czf …")]
    with pytest.raises(InputError) as info:
        check(written, _stack("offline"), "inv reset --phase 2 --profile offline",
              profile="default")
    assert info.value.exit_code == 2
    assert info.value.render() == (
        "overlays/images/offline.yaml:22: services.postgres.image: the data in volume "
        "parity_postgres-data was written by postgres:16.4-bookworm; this up would start "
        "parity-offline/postgres:15-bookworm on it (another image repository), which cannot "
        "be assumed to read it\n"
        "  next: keep the data: go back to the image that wrote it: --profile default; to "
        "move to parity-offline/postgres:15-bookworm anyway, back the data up first "
        "(docker run … tar czf …) and restore it into the new image; or start over without "
        "it: inv reset --phase 2 --profile offline (deletes parity's data)")


def test_check_without_a_known_profile_names_the_image_that_wrote_the_data():
    written = [Written("postgres", "volume parity_postgres-data", "postgres:16.4-bookworm")]
    with pytest.raises(InputError) as info:
        check(written, _stack("offline"), "inv reset")
    assert info.value.hint == (
        "keep the data: go back to the image that wrote it (postgres:16.4-bookworm: the "
        "image profile or overlay it ran with); or start over without it: inv reset "
        "(deletes parity's data)")


@pytest.mark.parametrize("old", [
    "sha256:" + "ab" * 32,          # docker ps shows the old ID once the tag moved
    "ab" * 32,
    "0b935ec7076e",
])
def test_an_image_id_is_never_judged_as_another_repository(old):
    """Issue 14: `inv images --force` while the stack runs moves the tag to a new
    build; what Docker reports for the old container is an ID, not software."""
    assert is_image_id(old)
    assert incompatibility(old, "parity-offline/postgres:15-bookworm") is None


def test_a_rebuild_of_the_same_reference_passes():
    st = _stack("offline")
    check([Written("postgres", "v", "parity-offline/postgres:15-bookworm")], st, "inv reset")
    assert not is_image_id("postgres:16.4-bookworm")
    assert not is_image_id("parity/api:0.1.0")


def test_down_remembers_the_writers_of_the_data_it_keeps(tmp_path):
    assert recalled(tmp_path, "compose") == []
    remember(tmp_path, "compose", [Written("postgres", "volume p_d", "postgres:16.4", "b")])
    remember(tmp_path, "compose", [Written("redis", "volume r_d", "redis:7.4")])
    assert recalled(tmp_path, "compose") == [
        Written("postgres", "volume p_d", "postgres:16.4", "b"),
        Written("redis", "volume r_d", "redis:7.4")]
    assert recalled(tmp_path, "kind") == []
    forget(tmp_path, "compose")
    assert recalled(tmp_path, "compose") == []


def test_check_collects_every_service_and_ignores_stateless_and_unknown_ones():
    st = _stack("offline")
    written = [Written("postgres", "v1", "postgres:16.4-bookworm"),
               Written("redis", "v2", "redis:7.4.1-bookworm"),
               Written("api", "v3", "something:else"),        # no storage
               Written("vault", "v4", "hashicorp/vault:1.17")]  # not in phase 2
    with pytest.raises(InputErrors) as info:
        check(written, st, "inv reset")
    assert [e.path for e in info.value.errors] == ["services.postgres.image",
                                                   "services.redis.image"]


def test_check_passes_the_images_that_wrote_the_data():
    st = _stack("offline")
    check([Written(n, "v", st.services[n].image) for n in ("postgres", "redis", "nats")],
          st, "inv reset")
