"""Connection profiles: Temporal's TOML profiles and TEMPORAL_* variables become hitl's connect arguments."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from hitl._core import client as _client
from hitl.errors import ConfigurationError, TemporalUnavailableError
from hitl.settings import Settings

API_KEY = "tcld-apikey-9d8c7b6a5f4e"


def profile_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(text)
    return path


def test_profile_file_gives_address_namespace_and_api_key(tmp_path):
    """TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE pick a profile; its API key turns TLS on, as Temporal Cloud needs."""
    path = profile_file(tmp_path, f'[profile.default]\naddress = "elsewhere:1"\n\n[profile.cloud]\n'
                                  f'address = "ns.acct.tmprl.cloud:7233"\nnamespace = "ns.acct"\napi_key = "{API_KEY}"\n')
    settings = Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path), "TEMPORAL_PROFILE": "cloud"})
    args = settings.connect_args()
    assert (args["target_host"], args["namespace"], args["api_key"]) == ("ns.acct.tmprl.cloud:7233", "ns.acct", API_KEY)
    assert args["tls"] is not False and settings.profile == "cloud"


def test_profile_tls_files_are_read_into_the_tls_config(tmp_path):
    """A profile's client cert, client key, server CA and server name reach Client.connect's TLSConfig."""
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    path = profile_file(tmp_path, f'[profile.default]\naddress = "temporal.internal:7233"\nnamespace = "agents"\n'
                                  f'[profile.default.tls]\nclient_cert_path = "{tmp_path}/client.pem"\n'
                                  f'client_key_path = "{tmp_path}/client.key"\nserver_ca_cert_path = "{tmp_path}/ca.pem"\n'
                                  f'server_name = "temporal.internal"\n')
    tls = Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path)}).connect_args()["tls"]
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert, tls.domain) == (
        b"-----client.pem-----", b"-----client.key-----", b"-----ca.pem-----", "temporal.internal")


def test_environment_variables_alone_configure_the_connection(tmp_path):
    """TEMPORAL_ADDRESS, _NAMESPACE, _API_KEY and the TEMPORAL_TLS_* paths work without any file."""
    (tmp_path / "c.pem").write_bytes(b"cert")
    (tmp_path / "c.key").write_bytes(b"key")
    (tmp_path / "ca.pem").write_bytes(b"ca")
    env = {"TEMPORAL_ADDRESS": "t.example:7233", "TEMPORAL_NAMESPACE": "prod", "TEMPORAL_API_KEY": API_KEY,
           "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "c.pem"), "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "c.key"),
           "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "ca.pem"), "TEMPORAL_TLS_SERVER_NAME": "t.example",
           "TEMPORAL_GRPC_META_X_TEAM": "agents"}
    args = Settings.from_env(env=env).connect_args()
    assert (args["target_host"], args["namespace"], args["api_key"]) == ("t.example:7233", "prod", API_KEY)
    assert (args["tls"].client_cert, args["tls"].client_private_key, args["tls"].server_root_ca_cert) == (b"cert", b"key", b"ca")
    assert args["tls"].domain == "t.example" and args["rpc_metadata"] == {"x-team": "agents"}


def test_precedence_is_explicit_then_env_then_file_then_defaults(tmp_path):
    """An explicit argument beats TEMPORAL_*, which beats the profile file, which beats the defaults."""
    path = profile_file(tmp_path, '[profile.default]\naddress = "file:1"\nnamespace = "file-ns"\n')
    env = {"TEMPORAL_CONFIG_FILE": str(path), "TEMPORAL_ADDRESS": "env:2"}
    assert Settings.from_env(env=env, temporal_address="arg:3").temporal_address == "arg:3"
    by_env = Settings.from_env(env=env)
    assert (by_env.temporal_address, by_env.namespace) == ("env:2", "file-ns")
    default = Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(profile_file(tmp_path, "[profile.default]\n"))})
    assert (default.temporal_address, default.namespace, default.task_queue) == ("localhost:7233", "default", "hitl-agents")
    assert default.connect_args()["tls"] is False and "api_key" not in default.connect_args()


def test_tls_can_be_disabled_under_an_api_key():
    """TEMPORAL_TLS=false with an API key: the key is sent over plain gRPC (a local proxy that adds TLS)."""
    args = Settings.from_env(env={"TEMPORAL_API_KEY": API_KEY, "TEMPORAL_TLS": "false"}).connect_args()
    assert args["tls"] is False and args["api_key"] == API_KEY


@pytest.mark.parametrize("text, says", [
    ('[profile.default\naddress = "x"\n', "unclosed table"),
    ('[profile.default]\naddres = "x"\n', "unknown field `addres`"),
])
def test_a_bad_profile_file_is_refused_naming_it(tmp_path, text, says):
    """A malformed or misspelt profile file is a ConfigurationError naming the file and the fault."""
    path = profile_file(tmp_path, text)
    with pytest.raises(ConfigurationError, match=says) as exc:
        Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path)})
    assert str(path) in str(exc.value)


def test_a_missing_file_or_profile_is_refused(tmp_path):
    """TEMPORAL_CONFIG_FILE naming no file, or TEMPORAL_PROFILE naming no profile, is refused, not ignored."""
    with pytest.raises(ConfigurationError, match="nowhere.toml"):
        Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(tmp_path / "nowhere.toml")})
    path = profile_file(tmp_path, '[profile.default]\naddress = "x:1"\n')
    with pytest.raises(ConfigurationError, match="'staging'"):
        Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path), "TEMPORAL_PROFILE": "staging"})


def test_the_api_key_is_never_shown(tmp_path):
    """Neither the settings' repr nor their JSON nor a parse error of the file quotes the API key."""
    settings = Settings.from_env(env={"TEMPORAL_API_KEY": API_KEY, "TEMPORAL_GRPC_META_AUTHORIZATION": "Bearer sek"})
    assert API_KEY not in repr(settings) + str(settings) + settings.model_dump_json()
    assert "sek" not in repr(settings) and API_KEY not in repr(settings.connection_key())
    path = profile_file(tmp_path, f'[profile.default]\napi_key = "{API_KEY}\n')  # unterminated string
    with pytest.raises(ConfigurationError) as exc:
        Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path)})
    assert API_KEY not in str(exc.value) and str(path) in str(exc.value)


# ---------------------------------------------------------------- a real mutual-TLS connection

def _cert(subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *, ca: bool = False,
          server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    files: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("hitl-test-ca", ca_key, None, ca_key, ca=True)
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"hitl-{role}", key, ca, ca_key, server=role == "server")
        files[f"{role}.pem"] = tmp_path / f"{role}.pem"
        files[f"{role}.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{role}.key"] = tmp_path / f"{role}.key"
        files[f"{role}.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    files["ca.pem"] = tmp_path / "ca.pem"
    files["ca.pem"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


@asynccontextmanager
async def mtls_front(upstream: str, pki: dict[str, Path]) -> AsyncIterator[str]:
    """A TLS front for the dev server (which serves no TLS itself) that demands a client certificate of the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server.pem"], pki["server.key"])
    context.load_verify_locations(pki["ca.pem"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_a_profile_with_client_certificates_connects_over_mutual_tls(tmp_path, temporal_server):
    """A TLS profile (client cert and key, server CA) connects through a TLS front that requires the client certificate."""
    pki = _write_pki(tmp_path)
    async with mtls_front(temporal_server["address"], pki) as address:
        path = profile_file(tmp_path, f'[profile.mtls]\naddress = "{address}"\nnamespace = "default"\n[profile.mtls.tls]\n'
                                      f'client_cert_path = "{pki["client.pem"]}"\nclient_key_path = "{pki["client.key"]}"\n'
                                      f'server_ca_cert_path = "{pki["ca.pem"]}"\nserver_name = "localhost"\n')
        settings = Settings.from_env(env={"TEMPORAL_CONFIG_FILE": str(path), "TEMPORAL_PROFILE": "mtls"})
        client = await _client.connect(settings)
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.server_version
        await client.count_workflows()  # a namespaced call, over the same TLS connection


async def test_without_the_client_certificate_mutual_tls_is_refused(tmp_path, temporal_server):
    """The same front refuses a profile that trusts the server but presents no client certificate."""
    pki = _write_pki(tmp_path)
    async with mtls_front(temporal_server["address"], pki) as address:
        env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki["ca.pem"]),
               "TEMPORAL_TLS_SERVER_NAME": "localhost"}
        with pytest.raises(TemporalUnavailableError, match=address):
            await _client.connect(Settings.from_env(env=env))
