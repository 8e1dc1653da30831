"""Every shared st.* helper lives here; pages import from ui, never compute."""
