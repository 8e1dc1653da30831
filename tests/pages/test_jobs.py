"""ui.jobs.run_job when Stop and the start button arrive in the same rerun (Streamlit merges a click still waiting
into the next request, so both read as pressed): the job must not start again with its stop flag cleared."""

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui import jobs

    jobs.count_run()
    st.session_state.setdefault("calls", 0)
    st.button("stop", key="stop", on_click=jobs._request_stop, args=("demo",))  # the job's own ⏹ callback
    if st.button("start", key="start"):

        def work(progress, on_row, should_stop):
            st.session_state["calls"] += 1
            on_row(1)
            return "done"

        st.session_state["status"] = jobs.run_job("demo", work).status


def test_stop_in_the_same_rerun_as_the_start_wins():
    at = AppTest.from_function(_script).run()
    at.button(key="start").click()
    at.button(key="stop").click()
    at.run()
    assert not at.exception
    assert at.session_state["calls"] == 0 and at.session_state["status"] == "cancelled"


def test_an_earlier_stop_does_not_block_the_next_start():
    at = AppTest.from_function(_script).run()
    at.button(key="stop").click().run()  # a Stop click on its own (the job it stopped is gone)
    at.button(key="start").click().run()
    assert not at.exception
    assert at.session_state["calls"] == 1 and at.session_state["status"] == "finished"
