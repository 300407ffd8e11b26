"""The pure handshake rules of spec.md §2.1 and the --listen syntax of §2.2."""

import os
import stat

import pytest

from vkhost_sdk import launch
from vkhost_sdk.launch import LaunchError


def test_magic_cookie_accepted_only_exactly():
    launch.check_magic_cookie(launch.MAGIC_COOKIE_VALUE)
    for bad in (None, "", "wrong", launch.MAGIC_COOKIE_VALUE + " "):
        with pytest.raises(LaunchError, match="vkhost provider plugin"):
            launch.check_magic_cookie(bad)


def test_choose_protocol_picks_highest_shared():
    assert launch.choose_protocol("99,1,98", (1,)) == 1
    assert launch.choose_protocol(" 1 , 2 ", (1, 2)) == 2


@pytest.mark.parametrize("offer", ["", None, "99", "1,x", "2,3"])
def test_choose_protocol_refuses_and_names_both_lists(offer):
    with pytest.raises(LaunchError) as error:
        launch.choose_protocol(offer, (1,))
    assert f'"{offer or ""}"' in str(error.value)
    assert 'speaks "1"' in str(error.value)


def test_handshake_line():
    assert launch.handshake_line(1, "/tmp/x/plugin.sock") == "VKHOST|1|1|unix|/tmp/x/plugin.sock|grpc\n"


def test_private_socket_dir_is_new_and_0700(tmp_path):
    made = launch.make_private_socket_dir(str(tmp_path), "/nonexistent")
    assert os.path.dirname(made) == str(tmp_path)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    other = launch.make_private_socket_dir("", str(tmp_path))
    assert other != made and os.path.dirname(other) == str(tmp_path)


def test_private_socket_dir_failure_is_reported():
    with pytest.raises(LaunchError, match="cannot create a private socket directory"):
        launch.make_private_socket_dir("/nonexistent/dir", None)


@pytest.mark.parametrize("listen,kind,address", [
    ("unix:///run/p.sock", "unix", "unix:/run/p.sock"),
    ("tcp://127.0.0.1:7443", "tcp", "127.0.0.1:7443"),
    ("tcp://:7443", "tcp", "0.0.0.0:7443"),
    ("tcp://[::1]:0", "tcp", "[::1]:0"),
])
def test_parse_listen(listen, kind, address):
    parsed = launch.parse_listen_address(listen)
    assert parsed.kind == kind
    assert parsed.grpc_address() == address


@pytest.mark.parametrize("listen", ["unix://relative.sock", "tcp://host", "tcp://h:99999",
                                    "tcp://::1:80", "http://x:1", "/tmp/p.sock"])
def test_parse_listen_refuses(listen):
    with pytest.raises(LaunchError, match="bad --listen"):
        launch.parse_listen_address(listen)


def test_remove_stale_socket_never_deletes_a_regular_file(tmp_path):
    launch.remove_stale_socket(str(tmp_path / "absent.sock"))
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(LaunchError, match="not a socket"):
        launch.remove_stale_socket(str(regular))
    assert regular.read_text() == "keep me"
