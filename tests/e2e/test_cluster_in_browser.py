"""The app with `FMNIST_RAY_ADDRESS` set, in Chromium: two visitors' runs train at the same time, each on a node of a
real Ray cluster on this machine (a head with no CPUs for jobs and two nodes of one CPU each), and the Train page
says where jobs train and on which node each one does."""

from __future__ import annotations

import re

import pytest
from app_actions import RUN_SECONDS, current, open_page, progress_text, run_outcome, start_run
from app_server import VIEWPORT, AppServer, copy_shipped_model
from conftest import ARTIFACTS
from playwright.sync_api import expect

pytestmark = pytest.mark.slow
RUN = "preset=seed-000&train_subset_size=6000&epochs=4&batch_size=64"


@pytest.fixture(scope="module")
def cluster_app(tmp_path_factory, one_ray_cluster_at_a_time):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    server = None
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        ARTIFACTS.mkdir(exist_ok=True)
        server = AppServer(copy_shipped_model(tmp_path_factory.mktemp("models")), ARTIFACTS / "cluster-server.log",
                           environment={"FMNIST_RAY_ADDRESS": cluster.address, "FMNIST_CPUS_PER_JOB": "1"})
        server.wait_until_healthy()
        yield server
    finally:
        if server is not None:
            server.stop()
        cluster.shutdown()


def test_two_visitors_runs_train_at_once_on_two_nodes_and_the_page_names_them(browser, cluster_app):
    pages = [browser.new_context(viewport=VIEWPORT).new_page() for _ in range(2)]
    for number, page in enumerate(pages):
        open_page(page, cluster_app.url, query=RUN)
        start_run(page, f"on-cluster-{number}")
    for page in pages:  # both training at once: neither waits in the queue
        expect(progress_text(page)).to_contain_text(re.compile(r"^Epoch \d/4"), timeout=RUN_SECONDS * 1000)
    said = re.compile(r"^Jobs train on the Ray cluster at \S+ \(2 nodes\): 0 of 2 job slots free\. "
                      r"Training: .+ on \S+ \(\w{6}\); .+ on \S+ \(\w{6}\)")
    where = current(pages[0]).get_by_text(said)
    expect(where).to_be_visible(timeout=30_000)
    nodes = re.findall(r"on \S+ \((\w{6})\)", where.inner_text())
    assert len(set(nodes)) == 2, where.inner_text()  # one on each node
    pages[0].screenshot(path=ARTIFACTS / "cluster-train.png", full_page=True)
    for number, page in enumerate(pages):
        outcome = run_outcome(page).filter(has_text=f"saved as on-cluster-{number}.")
        expect(outcome).to_have_text(re.compile(r"^Finished after 4 epochs"), timeout=RUN_SECONDS * 1000)
    for page in pages:
        page.context.close()
