import logging

from apps.core.logs import EventFormatter

FORMAT = "%(levelname)s %(name)s %(message)s"


def _record(**extra):
    logger = logging.getLogger("amanah.test")
    return logger.makeRecord(
        "amanah.test",
        logging.WARNING,
        __file__,
        1,
        "imports.job_failed",
        (),
        None,
        extra=extra,
    )


def test_the_fields_a_call_passed_follow_the_event_name_sorted():
    line = EventFormatter(FORMAT).format(_record(job="7", error="ValueError", line=3))
    assert line == (
        "WARNING amanah.test imports.job_failed error='ValueError' job='7' line=3"
    )


def test_an_event_without_fields_is_the_plain_line():
    assert EventFormatter(FORMAT).format(_record()) == (
        "WARNING amanah.test imports.job_failed"
    )


def test_a_traceback_stays_below_the_line_with_its_fields():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.getLogger("t").makeRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "x.failed",
            (),
            sys.exc_info(),
            extra={"job": 1},
        )
    first, _, rest = EventFormatter(FORMAT).format(record).partition("\n")
    assert first == "ERROR t x.failed job=1"
    assert rest.startswith("Traceback")


def test_the_settings_use_it(settings):
    assert settings.LOGGING["formatters"]["plain"]["()"] == (
        "apps.core.logs.EventFormatter"
    )


def test_the_request_django_attaches_never_reaches_the_line(rf, caplog):
    """django.request logs a 4xx with the request as a field: its repr holds the
    path and query string, personal data where a client put it there."""
    from django.http import HttpResponse
    from django.utils.log import log_response

    request = rf.get("/desk/", {"email": "jane@example.com"})
    with caplog.at_level(logging.WARNING, logger="django.request"):
        log_response(
            "Bad Request: %s",
            request.path,
            response=HttpResponse(status=400),
            request=request,
        )
    line = EventFormatter(FORMAT).format(caplog.records[-1])
    assert "jane" not in line
    assert "status_code=400" in line
