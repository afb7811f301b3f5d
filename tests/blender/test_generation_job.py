"""The background job the modal operator polls: progress, result, errors and cancel cross threads."""
import threading

import pytest

from gestura.blender.generation_job import GenerationJob


def test_job_reports_progress_and_hands_back_the_result():
    release = threading.Event()

    def work(progress, cancel):
        progress(0.25, "features")
        release.wait(10)
        progress(1.0, "done")
        return "motion"

    job = GenerationJob(work).start()
    for _ in range(200):
        if job.state().fraction == 0.25:
            break
        threading.Event().wait(0.01)
    state = job.state()
    assert (state.fraction, state.message, state.finished) == (0.25, "features", False)
    with pytest.raises(RuntimeError, match="not finished"):
        job.outcome()
    release.set()
    assert job.join(10)
    assert job.state().finished and job.outcome() == "motion"


def test_errors_are_raised_again_on_the_calling_thread():
    def work(progress, cancel):
        raise ValueError("audio file is empty")

    job = GenerationJob(work).start()
    assert job.join(10)
    with pytest.raises(ValueError, match="audio file is empty"):
        job.outcome()
    assert "ValueError" in job.error_traceback


def test_cancel_is_seen_by_the_work_function():
    class Stopped(Exception):
        pass

    def work(progress, cancel):
        while not cancel():
            threading.Event().wait(0.01)
        raise Stopped()

    job = GenerationJob(work).start()
    job.cancel()
    assert job.join(10)
    assert job.state().cancelled
    with pytest.raises(Stopped):
        job.outcome()
