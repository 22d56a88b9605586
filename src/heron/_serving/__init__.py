"""The prediction server (``heron serve``): one endpoint, a separate stateless process.

Import cost matters here (time to ready is measured), so this package imports nothing
heavy until a server is built.
"""

from heron._serving._app import PredictionServer
from heron._serving._log import PredictionSink
from heron._serving._options import ServeOptions

__all__ = ["PredictionServer", "PredictionSink", "ServeOptions"]
