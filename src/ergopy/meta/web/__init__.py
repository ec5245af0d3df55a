"""The web server meta-process and the path multiplexer.

server = await web.create_web_server(web.WebServerOptions(host="localhost", port=0, handler=handler))
self.spawn_meta(server, gen.MetaOptions()); server.port
"""

from .mux import Mux, StaticContent
from .server import WebServer, WebServerOptions, create_web_server

__all__ = ["Mux", "StaticContent", "WebServer", "WebServerOptions", "create_web_server"]
