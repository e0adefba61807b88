"""A real headless Chromium for end-to-end tests and benches, driven through Debian's
chromedriver over the W3C WebDriver HTTP API with nothing but the Python standard library.

    with Browser(workdir) as b:
        b.get("https://127.0.0.1:8443/")
        b.js("return document.title")
        b.screenshot("/tmp/x.png")

The browser accepts the test CA's server certificate (acceptInsecureCerts), starts with an
empty profile in workdir, and is killed with its driver on close."""
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from harness import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def available():
    """None when chromium and chromedriver are installed, else what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    return ("missing %s (scripts/setup installs Debian's chromium and chromium-driver)"
            % ", ".join(missing)) if missing else None


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, workdir, width=1280, height=900):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "chromedriver.log"), "wb")
        self.profile = os.path.join(workdir, "chromium-profile-%d" % self.port)
        os.makedirs(self.profile, exist_ok=True)
        env = dict(os.environ, HOME=workdir)
        self.driver = subprocess.Popen([CHROMEDRIVER, "--port=%d" % self.port],
                                       stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = "http://127.0.0.1:%d" % self.port
        wait_until("chromedriver to answer", self._ready, timeout=30)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": True,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--window-size=%d,%d" % (width, height),
                         "--user-data-dir=" + self.profile],
            },
        }}}
        self.session = self._call("POST", "/session", caps, timeout=90)["sessionId"]

    def _ready(self):
        try:
            with urllib.request.urlopen(self.base + "/status", timeout=2) as r:
                return json.load(r)["value"].get("ready", False)
        except (OSError, ValueError, KeyError):
            return False

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.load(r)
        except urllib.error.HTTPError as e:
            raise WebDriverError("%s %s: %s" % (method, path, e.read()[:2000].decode(
                "utf-8", "replace"))) from None
        return out.get("value", out) if path != "/session" else out["value"]

    def _s(self, path):
        return "/session/%s%s" % (self.session, path)

    def get(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    def url(self):
        return self._call("GET", self._s("/url"))

    def js(self, script, *args):
        """Runs script (a function body: `return ...`) in the page and returns its value."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def find(self, css):
        return self._call("POST", self._s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        self._call("POST", self._s("/element/%s/value" % self.find(css)), {"text": text})

    def click(self, css):
        self._call("POST", self._s("/element/%s/click" % self.find(css)), {})

    def wait_js(self, what, script, timeout=20):
        """Waits until script returns something true; returns it."""
        box = []

        def ok():
            v = self.js(script)
            box[:] = [v]
            return bool(v)
        wait_until(what, ok, timeout=timeout, step=0.1)
        return box[0]

    def screenshot(self, path):
        png = base64.b64decode(self._call("GET", self._s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def close(self):
        try:
            self._call("DELETE", self._s(""), timeout=20)
        except Exception:  # noqa: BLE001 - the driver is killed next anyway
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
