# A fake Amadeus + Twilio answering at once, from the real payloads in
# tests/fixtures/, for measuring farewatch end to end (scripts/bench/check_10k.sh).
# Usage: python3 fake_providers.py PORT   (GET /count: searches and SMS served)
import json, os, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
FX = os.environ.get("FIXTURES", os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")) + "/"
offers = open(FX + "fares/amadeus-flight-offers-LHR-JFK.json", "rb").read()
token = open(FX + "fares/amadeus-token.json", "rb").read()
created = open(FX + "notify/twilio-message-created.json", "rb").read()
count = {"search": 0, "sms": 0}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body, ct):
        self.send_response(code)
        self.send_header("content-type", ct)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/v2/shopping/flight-offers"):
            with lock: count["search"] += 1
            return self.reply(200, offers, "application/vnd.amadeus+json")
        if "/Messages.json" in self.path:
            return self.reply(200, b'{"messages":[],"next_page_uri":null}', "application/json")
        if self.path == "/count":
            return self.reply(200, json.dumps(count).encode(), "application/json")
        self.reply(404, b"{}", "application/json")
    def do_POST(self):
        n = int(self.headers.get("content-length", "0")); self.rfile.read(n)
        if self.path.startswith("/v1/security/oauth2/token"):
            return self.reply(200, token, "application/json")
        if "/Messages.json" in self.path:
            with lock: count["sms"] += 1
            return self.reply(201, created, "application/json")
        self.reply(404, b"{}", "application/json")
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
s.serve_forever()
