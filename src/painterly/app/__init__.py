"""The studio: a Streamlit web app over the job queue (``main.py`` and its pages).

Importing this package is cheap: Streamlit is imported only by the script the server runs
(``main.py``); ``launcher.launch()`` starts it with its workers (``painterly app``).
"""

from __future__ import annotations

from .launcher import launch, streamlit_command, worker_command

__all__ = ["launch", "streamlit_command", "worker_command"]
