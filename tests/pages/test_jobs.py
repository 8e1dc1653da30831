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


def _script_with_a_flagged_stop():
    import streamlit as st

    from ui import jobs

    if st.button("start", key="start"):

        def work(progress, on_row, should_stop):
            on_row(1)
            st.session_state["_job_demo_stop"] = True  # the ⏹ callback ran, but no rerun interrupted the script
            progress(0.5, "half")
            on_row(2)  # never reached
            return "done"

        job = jobs.run_job("demo", work)
        st.session_state["result"] = (job.status, list(job.rows))


def test_a_stop_flag_ends_the_job_at_its_next_progress_call():
    at = AppTest.from_function(_script_with_a_flagged_stop).run()
    at.button(key="start").click().run()
    assert not at.exception
    assert at.session_state["result"] == ("cancelled", [1])
