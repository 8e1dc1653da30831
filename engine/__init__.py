"""LLM Practice Lab engine: the library behind every page. Never imports streamlit."""

__version__ = "0.1.0"
