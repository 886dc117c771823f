"""alphascope: the Streamlit entry point. It only sets the page up and routes; each page is a
file under views/ (home first), and everything they draw comes from nas_engine.viz.

The folder is not called pages/: Streamlit 1.67 still runs a pages/ folder's files as pages of
their own (bypassing st.navigation, this file and its page config) for every session until
some session has run this file once, e.g. a shared link opened on a freshly started server.

    streamlit run app.py            # http://127.0.0.1:8501 (see .streamlit/config.toml)
"""

import streamlit as st

from views import common

st.set_page_config(page_title="alphascope", page_icon=":material/biotech:", layout="wide")

PAGES = [  # file, title, icon, URL path
    (common.HOME, "Home", "home", ""),
    (common.SEARCH, "Search", "rocket_launch", "search"),
    (common.LIVE, "Live view", "monitoring", "live"),
    (common.INSPECT, "Collapse inspector", "troubleshoot", "inspect"),
    (common.COMPARE, "Compare runs", "compare_arrows", "compare"),
    (common.LESSON, "Lesson: collapse", "school", "lesson"),
]
st.navigation([
    st.Page(path, title=title, icon=f":material/{icon}:", url_path=url or None, default=not url)
    for path, title, icon, url in PAGES
]).run()
