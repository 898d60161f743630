"""The curation studio: ``streamlit run app.py``.

The first start on an empty workspace builds the demo datasets (with a progress bar), so a newcomer sees
data on the first page. Viewing needs no account; acting (import, override, jobs) does.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this folder on sys.path; AppTest and other launchers may not.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import streamlit as st

st.set_page_config(page_title="Curation studio", page_icon=":material/filter_alt:", layout="wide")

from pages import _studio as studio  # after the sys.path fix above

# Which pages a person sees follows their role: a voter sees only the voting page.
navigation = st.navigation(studio.navigation_pages())
# Each page opens with studio.page(title): the demo check and the sidebar (who is acting) render from
# inside the page, so they belong to it on every rerun (AppTest drops app-level elements after the first).
navigation.run()
