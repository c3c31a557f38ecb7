"""The end-to-end fixtures, over the harness (``tests/e2e/harness.py``).

``system`` is one running system per module (NATS, PostgreSQL, every service, the gateways
and a Radicale). A module that needs another one says how in its own ``system_options``
fixture, which overrides the default here::

    @pytest.fixture(scope="module")
    def system_options() -> SystemOptions:
        return SystemOptions(replicas={"gateway": 2}, environ={"CORTEX_...": "..."})

``owner`` is one owner for the module, with an open page and its Radicale calendar
connected; ``stripe_api`` is the local Stripe fake and its URL, for a module whose
``system_options`` points billing at it (``stripe_environ``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cortex_dev.fakes.stripe import FakeStripe
from tests.e2e.harness import Owner, System, SystemOptions, fake_stripe, make_owner, running_system


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    """The default system: one replica of everything, no setting changed."""
    return SystemOptions()


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    system_options: SystemOptions,
) -> Iterator[System]:
    root = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with running_system(
        root,
        replicas=system_options.replicas,
        radicale_max_content_length=system_options.radicale_max_content_length,
        **system_options.environ,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def owner(system: System) -> Owner:
    """An owner with an open page (every day 08:00-18:00 UTC) and its calendar connected."""
    return make_owner(system)


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[tuple[FakeStripe, str]]:
    """The local Stripe fake (with no upstream it also serves customers) and its URL."""
    with fake_stripe() as served:
        yield served
