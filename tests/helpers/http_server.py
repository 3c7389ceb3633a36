"""A local HTTP server on 127.0.0.1 (port from the OS) serving one folder,
counting the requests per path: checkpoints "downloaded" in tests."""
import collections
import functools
import http.server
import threading


class FolderServer:

    def __init__(self, folder):
        self.requests = collections.Counter()
        counter = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):

            def do_GET(self):
                counter[self.path] += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(Handler, directory=str(folder)))
        self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
