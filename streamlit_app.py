"""Fashion-MNIST CNN Studio: page set-up, the sidebar with the active model, and navigation.

Run with `streamlit run streamlit_app.py`. Each page is one module under views/; all logic is in fmnist_core.
"""

import streamlit as st

from fmnist_core.job_queue import JobQueueError
from fmnist_core.settings import SettingsError
from views import resources, session, sidebar, streamlit_patches, submission

st.set_page_config(page_title="Fashion-MNIST CNN Studio", page_icon="👕", layout="wide")
try:
    resources.settings()  # read once per server; a setting that cannot be read is said on every page
except SettingsError as error:
    st.error(f"This server's settings cannot be read: {error}")
    st.stop()
session.init_session()
streamlit_patches.keep_keras_state_between_reruns()
streamlit_patches.warm_up()
submission.keep_worker_running()  # training happens in a worker process; one is started when jobs wait for it

pages = [
    st.Page("views/train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("views/classify.py", title="Classify", icon=":material/image_search:"),
    st.Page("views/runs.py", title="Runs", icon=":material/history:"),
    st.Page("views/sweep.py", title="Sweep", icon=":material/tune:"),
    st.Page("views/dataset.py", title="Dataset", icon=":material/grid_view:"),
]
navigation = st.navigation(pages)
sidebar.render(train_page=pages[0])
session.show_flashes()
try:
    navigation.run()
except JobQueueError as error:  # busy or damaged: said in words on the page that needed it, the others unaffected
    st.error(f"The job queue cannot be used right now: {error}")
