"""Shared fixtures: the local multi-host test server and Debian Chromium for pytest-playwright.

Browser tests are marked ``@pytest.mark.browser``. When Chromium is missing they ERROR (the
``chromium_path`` fixture raises ``SandboxUnavailable``): CI installs it, so a missing browser must
never turn into a silent skip.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.browser.chromium import find_chromium, launch_args
from runner.browser.driver import SandboxConfig
from tests.server import TestServer, UdpListener

# A suite started as a background job of a non-interactive shell inherits SIGINT ignored, and so
# would every Python it starts (an ignored SIGINT at start-up stays ignored): the Ctrl-C tests
# would then see no KeyboardInterrupt. A handler here is reset to the default in each child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Hosts the shared pytest-playwright browser may resolve: the test server's names only.
TEST_HOSTS = ("localhost", "*.localhost", "127.0.0.1")
# What the driver tests allow by default.
ALLOWED_HOSTS = ("allowed.localhost", "*.allowed.localhost")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return find_chromium(os.environ)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], chromium_path: Path) -> dict[str, Any]:
    """pytest-playwright's ``browser`` fixture on Debian's Chromium, with the resolver allowlist."""
    config = SandboxConfig(executable=chromium_path, resolvable_hosts=TEST_HOSTS)
    return {
        **browser_type_launch_args,
        "executable_path": str(chromium_path),
        "args": launch_args(config),
        "handle_sigint": False,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "service_workers": "block"}


@pytest.fixture(scope="session")
def test_server_session() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def evil_server_session() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


@pytest.fixture
def test_server(test_server_session: TestServer) -> TestServer:
    """The shared server (started once per session), with routes and logs reset for this test."""
    test_server_session.reset()
    return test_server_session


@pytest.fixture
def evil_server(evil_server_session: TestServer) -> TestServer:
    """A second server on its own port: its connection log proves whether anything reached it."""
    evil_server_session.reset()
    return evil_server_session


@pytest.fixture
def udp_listener() -> Iterator[UdpListener]:
    with UdpListener() as listener:
        yield listener


@pytest.fixture
def sandbox_config(chromium_path: Path) -> SandboxConfig:
    """A driver config allowing ``allowed.localhost`` and its subdomains only."""
    return SandboxConfig(executable=chromium_path, resolvable_hosts=ALLOWED_HOSTS)


# pytest-playwright's fixtures keep one sync Playwright running on the main thread until the end of
# the session, and the sync API refuses to start a second one there ("Sync API inside the asyncio
# loop"). Tests that start their own (``open_driver``, ``sync_playwright()``) must therefore run
# before the first test that uses those fixtures: move the latter to the end.
_PW_FIXTURES = frozenset({"playwright", "browser_type", "browser", "context", "page", "new_context", "launch_browser"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def uses_pw(item: pytest.Item) -> bool:
        return bool(_PW_FIXTURES & set(getattr(item, "fixturenames", ())))

    items[:] = [i for i in items if not uses_pw(i)] + [i for i in items if uses_pw(i)]
