"""The floor: a bare ASGI app serving the same model (uvicorn, orjson, numpy), with no
validation, routing, metrics or logging. Run: uvicorn bare_app:app (MODEL_DIR names the
Heron model folder whose raw estimator it calls)."""

import copy
import os

import numpy as np
import orjson

from heron._models import load_model

_loaded = load_model(os.environ["MODEL_DIR"])
_columns = _loaded.signature.column_names
# Fitted on a DataFrame: a copy without feature names takes arrays without a warning per call.
_model = copy.copy(_loaded.raw)
del _model.feature_names_in_


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] != "/predict":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    rows = orjson.loads(body)["instances"]
    x = np.array([[row[c] for c in _columns] for row in rows], dtype=np.float64)
    out = orjson.dumps({"predictions": _model.predict(x)}, option=orjson.OPT_SERIALIZE_NUMPY)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": out})
