from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from reconciler.core.classify import ItemResult
from reconciler.core.errors import RetriableApiError
from reconciler.core.redact import RedactingBackend, redact, secret_forms

SECRET = "s3/cr+t é\"x"


@pytest.mark.parametrize("shown", [
    SECRET, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1],
    json.dumps(SECRET, ensure_ascii=False)[1:-1], base64.b64encode(SECRET.encode()).decode(),
    base64.b64encode(f"kid:{SECRET}".encode()).decode(),
])
def test_every_encoding_of_a_secret_is_masked(shown):
    forms = secret_forms([SECRET, "kid"], [("kid", SECRET)])
    assert redact(f"server said: {shown}!", forms) == "server said: ***!"


def test_the_backend_wrapper_masks_errors_and_item_answers():
    class Echoing:
        name = "echo"

        def delete_batch(self, ids):
            return [ItemResult(False, f"bad secret {SECRET}")]

        def check(self):
            raise RetriableApiError(f"list items: HTTP 500: {quote(SECRET, safe='')}",
                                    status=500, retry_after=3)

    backend = RedactingBackend(Echoing(), secret_forms([SECRET]))
    assert backend.name == "echo"
    assert backend.delete_batch(["a"]) == [ItemResult(False, "bad secret ***")]
    with pytest.raises(RetriableApiError) as caught:
        backend.check()
    assert str(caught.value) == "list items: HTTP 500: ***"
    assert caught.value.retry_after == 3 and caught.value.status == 500
