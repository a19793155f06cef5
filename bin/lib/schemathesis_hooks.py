"""schemathesis hooks for bin/api-check (SCHEMATHESIS_HOOKS=schemathesis_hooks).

schemathesis draws Idempotency-Key values from its schema, so different requests often share a key: the BFF then
rightly refuses the second with 422 idempotency-key-reused, and schemathesis never reaches the command. A valid key
is replaced with a fresh one before each call; an invalid one (a negative case) is left as drawn."""
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[ -~]{1,100}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
