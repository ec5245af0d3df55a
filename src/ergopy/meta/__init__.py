"""Meta-processes that own I/O: ``meta.web`` (web server, mux) and ``meta.websocket``."""
