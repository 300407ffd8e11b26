"""Connect mode over TCP with mutual TLS (--tls-cert-file, --tls-key-file, --tls-client-ca-file)."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import grpc
import pytest

from vkhost.provider.v1 import identity_pb2_grpc
from vkhost_sdk import v1

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "minimal_plugin.py"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def issue(directory: pathlib.Path, name: str, ca: pathlib.Path, ca_key: pathlib.Path,
          extension: str) -> None:
    key, csr, ext = (directory / f"{name}.key", directory / f"{name}.csr",
                     directory / f"{name}.ext")
    ext.write_text(extension + "\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
            "-subj", f"/CN={name}", "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "1", "-extfile", str(ext),
            "-out", str(directory / f"{name}.crt"))


@pytest.fixture
def pki(tmp_path):
    ca, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-subj", "/CN=test-ca", "-days", "1", "-out", str(ca))
    issue(tmp_path, "server", ca, ca_key, "subjectAltName=IP:127.0.0.1")
    issue(tmp_path, "client", ca, ca_key, "extendedKeyUsage=clientAuth")
    return tmp_path


def test_mutual_tls_accepts_a_client_certificate_and_refuses_none(pki):
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--listen", "tcp://127.0.0.1:0",
         f"--tls-cert-file={pki / 'server.crt'}", f"--tls-key-file={pki / 'server.key'}",
         f"--tls-client-ca-file={pki / 'ca.crt'}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in process.stderr:
            match = re.search(r"serving on .* \(port (\d+)\)", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "the plugin did not report its port"
        ca = (pki / "ca.crt").read_bytes()
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=(pki / "client.key").read_bytes(),
            certificate_chain=(pki / "client.crt").read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{port}", with_cert) as channel:
            info = identity_pb2_grpc.IdentityStub(channel).GetPluginInfo(
                v1.GetPluginInfoRequest(), timeout=10)
            assert info.name == "minimal-python"
        without_cert = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(f"127.0.0.1:{port}", without_cert) as channel:
            with pytest.raises(grpc.RpcError) as error:
                identity_pb2_grpc.IdentityStub(channel).GetPluginInfo(
                    v1.GetPluginInfoRequest(), timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        process.terminate()
        process.wait(10)
        process.stderr.close()
    assert process.returncode == 0


def test_tls_flags_must_come_together(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE), "--listen", "tcp://127.0.0.1:0",
                             "--tls-cert-file", str(tmp_path / "x.crt")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "needs both --tls-cert-file and --tls-key-file" in result.stderr
