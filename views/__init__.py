"""The Streamlit pages (one module each) and what they share; all logic lives in fmnist_core."""
