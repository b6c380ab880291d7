"""Where authentication settings come from: flags, then the ConfigMap, then upstream defaults."""

from __future__ import annotations

from pathlib import Path

from tidegauge.server.authconfig import merge
from tidegauge.server.settings import AuthenticationFlags

CONFIG_MAP = {
    "client-ca-file": "CLIENT-CA-FROM-MAP",
    "requestheader-client-ca-file": "PROXY-CA-FROM-MAP",
    "requestheader-allowed-names": '["front-proxy-client"]',
    "requestheader-username-headers": '["X-Remote-User"]',
    "requestheader-group-headers": '["X-Remote-Group"]',
    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
}


def test_config_map_values_are_used_when_no_flag_is_given() -> None:
    config = merge(AuthenticationFlags(), CONFIG_MAP)
    assert (config.client_ca, config.requestheader_ca) == (b"CLIENT-CA-FROM-MAP", b"PROXY-CA-FROM-MAP")
    assert config.allowed_names == ("front-proxy-client",)


def test_flags_override_the_config_map(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(b"CA-FROM-FILE")
    flags = AuthenticationFlags(
        client_ca_file=str(ca_file),
        requestheader_allowed_names=(),
        requestheader_username_headers=("X-User",),
    )
    config = merge(flags, CONFIG_MAP)
    assert config.client_ca == b"CA-FROM-FILE"
    assert config.requestheader_ca == b"PROXY-CA-FROM-MAP"
    assert config.allowed_names == ()
    assert config.username_headers == ("X-User",)


def test_defaults_apply_and_bad_json_is_ignored() -> None:
    config = merge(AuthenticationFlags(), {"requestheader-group-headers": "not json"})
    assert config.username_headers == ("X-Remote-User",)
    assert config.group_headers == ("X-Remote-Group",)
    assert config.extra_headers_prefixes == ("X-Remote-Extra-",)
    assert config.client_ca == b""
