"""Fixtures of the exchange tests: the fake provincial gateway as a real process
(tests/support/gateway.py), one per module, reset before each test that uses it."""
from __future__ import annotations

import pytest

from tests.support.gateway import Gateway, start_gateway


def _fresh(process: Gateway) -> Gateway:
    process.reset()
    return process


@pytest.fixture(scope="module")
def gateway_process():
    """The plain gateway process (no SM2/SM4) shared by a module's tests."""
    with start_gateway() as process:
        yield process


@pytest.fixture
def gateway(gateway_process) -> Gateway:
    """The fake gateway, emptied and back to mode ok: ``.url``, ``.control(**kw)``,
    ``.stats()``, ``.items(kind)``."""
    return _fresh(gateway_process)


@pytest.fixture(scope="module")
def secure_gateway_process():
    """A gateway that requires the test SM2 signature and SM4 encryption."""
    with start_gateway(secure=True) as process:
        yield process


@pytest.fixture
def secure_gateway(secure_gateway_process) -> Gateway:
    """The SM2+SM4 gateway, emptied."""
    return _fresh(secure_gateway_process)
