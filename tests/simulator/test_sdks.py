"""The two Python clients people use against real portals, run unmodified against the simulator, get every
row: the official SDK b24pysdk (which speaks only https, sends `crm.deal.List`-style names and
percent-encoded `$result[...]` references in its batches) and fast_bitrix24 (count-then-batch paging)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import portal_options

ENTITIES = {"crm.deal.list": ({"select": ["ID"]}, "deals"),
            "crm.activity.list": ({"select": ["ID"]}, "activities"),
            "crm.stagehistory.list": ({"entityTypeId": 2}, "deal_stage_history")}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, its own authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture(scope="module")
def https_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """An HTTPS portal whose certificate requests (REQUESTS_CA_BUNDLE) and aiohttp (SSL_CERT_FILE) trust."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    with pytest.MonkeyPatch.context() as env, \
            SimulatorProcess(**portal_options(deals=300, seed=37, tls_cert=cert, tls_key=key)) as sim:
        env.setenv("REQUESTS_CA_BUNDLE", str(cert))
        env.setenv("SSL_CERT_FILE", str(cert))
        yield sim


def _truth(sim: SimulatorProcess) -> dict[str, int]:
    return sim.control.truth()["rows"]


def test_b24pysdk_gets_every_row(https_portal: SimulatorProcess) -> None:
    from b24pysdk import BitrixWebhook, Client

    sim = https_portal
    host = sim.base_url.removeprefix("https://")
    secret = sim.webhook_url.rstrip("/").rsplit("/", 1)[1]
    client = Client(BitrixWebhook(domain=host, webhook_token=f"1/{secret}"))
    truth = _truth(sim)
    got = {"deals": len(list(client.crm.deal.list(select=["ID"]).as_list_fast().result)),
           "activities": len(list(client.crm.activity.list(select=["ID"]).as_list_fast().result)),
           "deal_stage_history": len(list(client.crm.stagehistory.list(entity_type_id=2).as_list_fast().result))}
    assert got == {key: truth[key] for key in got}
    assert min(got.values()) > 100, "more than the first two pages of every entity"


def test_fast_bitrix24_gets_every_row(https_portal: SimulatorProcess) -> None:
    from fast_bitrix24 import Bitrix

    sim = https_portal
    bitrix = Bitrix(sim.webhook_url, verbose=False)
    # aiohttp builds its default context once, when first imported, which may be before the fixture named the
    # certificate; the request handler hands its `ssl` to every request as it is, so it gets one trusting it.
    bitrix.srh.ssl = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    truth = _truth(sim)
    for method, (params, key) in ENTITIES.items():
        rows = bitrix.get_all(method, params=params)
        assert len({int(r["ID"]) for r in rows}) == len(rows) == truth[key], method
