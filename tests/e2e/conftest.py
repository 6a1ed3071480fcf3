"""Browser tests: the real app (`streamlit run`) on a free loopback port, driven by Debian's Chromium.

The server gets its own copy of the model store (the shipped default model plus whatever the tests
train), so the repository's models/ is never written. If the app does not start, the test fails with
the server's log attached. A missing Chromium fails the tests; it never skips them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_actions import end_every_job
from app_server import (
    OPERATOR_PASSWORD,
    REPO,
    VIEWPORT,
    AppServer,
    AppServerError,
    copy_shipped_model,
    launch_chromium,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

ARTIFACTS = REPO / "test-artifacts"
E2E = Path(__file__).resolve().parent

expect.set_options(timeout=15_000)  # the CPU is shared with training runs and the server


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e `browser`, so that `-m "not browser"` leaves them all out."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return copy_shipped_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def app_server(models_dir, artifacts):
    server = AppServer(models_dir, artifacts / "server.log", operator_password=OPERATOR_PASSWORD)
    try:
        server.wait_until_healthy()
    except AppServerError as error:
        server.stop()
        pytest.fail(str(error))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_job_outlives_a_failed_test(request):
    """A run a failed test left training on the shared server would slow, and then fail, the tests after it: after a
    test on that server fails, its jobs are ended. (A passing test ends its own; a module's shared run, as in
    test_live_run, goes on from one test to the next.)"""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and "app_server" in request.fixturenames:
        end_every_job(request.getfixturevalue("app_server").models_dir)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = launch_chromium(playwright)
        except FileNotFoundError as error:
            pytest.fail(str(error))
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, app_server):
    """A factory of pages, each in its own browser context: a separate user with a separate app session."""
    contexts = []

    def make(**context_options):
        context = browser.new_context(**{"viewport": VIEWPORT, **context_options})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        make.pages.append(page)
        return page

    make.pages = []  # for the screenshots of a failing test
    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def _open_pages(funcargs: dict) -> list[Page]:
    pages = [value for value in funcargs.values() if isinstance(value, Page)]
    factory = funcargs.get("new_page")
    return pages + [page for page in getattr(factory, "pages", []) if page not in pages]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test gets the server log attached and a screenshot of each of its pages saved. Each phase's
    report is kept on the test (`report_call`) for the fixtures that act on a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    funcargs = getattr(item, "funcargs", {})
    server = funcargs.get("app_server")
    if report.when != "call" or not report.failed or server is None:
        return
    report.sections.append(("streamlit server log", server.log_text()))
    for number, page in enumerate(_open_pages(funcargs)):
        path = ARTIFACTS / f"failed-{item.name}-{number}.png"
        try:
            page.screenshot(path=path)
        except PlaywrightError as error:  # a closed or crashed page: the log above still tells the story
            report.sections.append((f"screenshot {number}", f"not taken: {error}"))
        else:
            report.sections.append((f"screenshot {number}", str(path)))
