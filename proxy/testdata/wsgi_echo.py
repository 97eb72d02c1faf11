"""A WSGI upstream (the standard library's reference server, wsgiref) that answers every request
with the HTTP_* variables of its environ as JSON, so a test can see how a WSGI backend reads the
headers keygate forwarded: wsgiref, like CGI, gunicorn and Werkzeug, turns '-' into '_' and joins
repeated names with ','. GET /__count answers how many other requests arrived. The first line on
stdout is the port. Used by proxy's TestWSGIReadsHeadersAsJudged."""
import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

seen = 0


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def app(environ, start_response):
    global seen
    if environ.get('PATH_INFO') == '/__count':
        out = {'count': seen}
    else:
        seen += 1
        out = {k: v for k, v in environ.items() if k.startswith('HTTP_')}
        out['PATH_INFO'] = environ.get('PATH_INFO', '')
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
sys.stdout.close()
server.serve_forever()
