"""Headless Chromium for the browser tests, driven over the Chrome DevTools Protocol (CDP).

Chromium runs with ``--remote-debugging-pipe``: CDP messages are JSON objects, each ended by a
NUL byte, written to Chromium's file descriptor 3 and read from its descriptor 4. Nothing
listens on a port, and no websocket or browser-automation package is needed.

The network is "unplugged": no host name resolves and every request goes to a dead proxy,
except loopback (the live server), which Chromium never proxies. A page that needed a CDN (or
any other outside address) fails to load it, and the test sees that in :attr:`Tab.requested`
and :attr:`Tab.errors`.

What is here:

- :func:`browser`, the fixture: one Chromium per test with a throw-away profile, closed after
  the test; the test is skipped when Chromium is not installed (Debian:
  ``apt-get install -y chromium``);
- :class:`DevTools`: the Chromium process and the protocol (commands, events, shutdown);
- :class:`Tab`: one page of it: open a URL and wait for its load event, evaluate JavaScript,
  poll or wait for a condition, type, click, choose files, and the requests and errors seen;
- :func:`live_server`: a Flask app served on a free loopback port from a thread.

A test module takes the fixture by binding it to a module-level name (pytest finds fixtures
among a module's attributes; importing it by name would look unused to the linter)::

    from tests import browser as chromium

    browser = chromium.browser

    def test_page(browser):
        tab = chromium.Tab(browser)
        tab.open("http://127.0.0.1:5000/")
        assert tab.wait("typeof L !== 'undefined'")
        assert not tab.errors, tab.errors
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--remote-debugging-pipe",
    # the network is "unplugged": no name resolves and every request goes to a dead proxy,
    # except loopback (the live server), which Chromium never proxies
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]

# the CDP domains a tab enables unless told otherwise: enough for navigation, JavaScript, the
# requests it makes and the errors it logs
DOMAINS = ("Page", "Runtime", "Network", "Log")


class DevTools:
    """One Chromium process and a minimal CDP client over ``--remote-debugging-pipe``.

    :meth:`send` runs a command (on the browser, or on a tab's ``session``) and returns its
    result; every event that arrives meanwhile is appended to :attr:`events`, in order, and
    kept there (tabs filter them by their session). Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, binary: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # the pipe protocol: Chromium reads fd 3 and writes fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, deadline: float) -> dict:
        """The next message from Chromium (a reply or an event), by ``deadline``."""
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_chrome], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 20.0) -> dict:
        """Run one CDP command and return its result; a protocol error raises RuntimeError."""
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, *, session: str | None = None, start: int = 0,
                 timeout: float = 20.0) -> dict:
        """The first event ``method`` (of ``session``, if given) at or after ``events[start]``,
        reading from Chromium until it comes."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            for event in self.events[index:]:
                if event.get("method") == method and (
                        session is None or event.get("sessionId") == session):
                    return event
            index = len(self.events)
            try:
                self.events.append(self._read(deadline))
            except TimeoutError:
                raise TimeoutError(f"no {method} event within {timeout} s") from None

    def close(self) -> None:
        """Ask Chromium to quit (kill it after 10 s) and close the pipe."""
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ConnectionError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser() -> Iterator[DevTools]:
    """A fresh headless Chromium (its profile in a temporary folder), closed after the test."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    with (tempfile.TemporaryDirectory(prefix="gridgov-chromium-") as profile,
          DevTools(CHROMIUM, profile) as devtools):
        yield devtools


class JavaScriptError(AssertionError):
    """An expression evaluated in the page threw."""


def _is_error(event: dict) -> bool:
    """An uncaught exception, an error logged or printed to the console, or a failed request."""
    method, params = event.get("method"), event.get("params", {})
    return (method in ("Runtime.exceptionThrown", "Network.loadingFailed")
            or (method == "Log.entryAdded" and params["entry"]["level"] == "error")
            or (method == "Runtime.consoleAPICalled" and params["type"] == "error"))


class Tab:
    """One page (a CDP target) of a :class:`DevTools` browser, with its own session.

    Navigation (:meth:`open`, :meth:`reload`, :meth:`until_loaded`) returns once the new
    page's load event has fired. :attr:`requested` and :attr:`errors` cover every page the tab
    has shown; :meth:`events` gives the raw events, of the whole tab or of the current page.
    """

    def __init__(self, devtools: DevTools, domains: Iterable[str] = DOMAINS) -> None:
        self.devtools = devtools
        target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session: str = devtools.send("Target.attachToTarget",
                                          {"targetId": target, "flatten": True})["sessionId"]
        self._navigation = len(devtools.events)  # where the current page's events begin
        for domain in domains:
            self.send(f"{domain}.enable")

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """A CDP command on this tab (or on another ``session``, such as a worker's)."""
        return self.devtools.send(method, params, session=session or self.session)

    # -- what the tab saw ---------------------------------------------------------------------
    def events(self, method: str | None = None, *, since_navigation: bool = False) -> list[dict]:
        """This tab's events (only ``method`` if given), since the tab opened or since the
        current page's navigation began."""
        start = self._navigation if since_navigation else 0
        return [e for e in self.devtools.events[start:]
                if e.get("sessionId") == self.session
                and (method is None or e.get("method") == method)]

    @property
    def requested(self) -> list[str]:
        """Every URL the tab requested, in order."""
        return [e["params"]["request"]["url"] for e in self.events("Network.requestWillBeSent")]

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions, console and log errors and failed requests, as JSON text."""
        return [json.dumps(e["params"], ensure_ascii=False)[:500]
                for e in self.events() if _is_error(e)]

    # -- navigation ---------------------------------------------------------------------------
    def until_loaded(self, action: Callable[[], object], timeout: float = 30.0) -> None:
        """Do ``action`` (which makes the tab load a page) and wait for that page's load event."""
        self._navigation = len(self.devtools.events)
        action()
        self.devtools.wait_for("Page.loadEventFired", session=self.session,
                               start=self._navigation, timeout=timeout)

    def open(self, url: str, timeout: float = 30.0) -> None:
        self.until_loaded(lambda: self.send("Page.navigate", {"url": url}), timeout)

    def reload(self, timeout: float = 30.0) -> None:
        self.until_loaded(lambda: self.send("Page.reload", {"ignoreCache": False}), timeout)

    # -- JavaScript ---------------------------------------------------------------------------
    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (a promise is awaited); a throw raises
        :class:`JavaScriptError`."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True})
        if "exceptionDetails" in reply:
            raise JavaScriptError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0) -> Any:
        """Evaluate ``expression`` every 0.1 s until it is truthy and return it; TimeoutError
        after ``timeout`` s. A throw raises at once (the condition itself is broken)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.1)

    def poll(self, expression: str, ready: Callable[[Any], object], timeout: float = 5.0) -> Any:
        """Evaluate ``expression`` every 0.1 s until ``ready(value)``, for ``timeout`` s at most,
        and return the last value, ready or not, for the test's assertions to show. A throw
        counts as not ready yet (value ``None``): for probes of a page that is still drawing."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except JavaScriptError:
                value = None
            if ready(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def text(self) -> str:
        """The page's visible text."""
        return self.evaluate("document.body.innerText")

    # -- input --------------------------------------------------------------------------------
    def box(self, selector: str, timeout: float = 20.0) -> dict:
        """Wait for the element, scroll it to the middle of the view and return its centre
        ``x``, ``y`` and its ``width``, ``height`` (CSS pixels)."""
        return self.wait(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return {{x: r.x + r.width / 2, y: r.y + r.height / 2, width: r.width,
                     height: r.height}}; }})()""", timeout)

    def click_at(self, x: float, y: float) -> None:
        """A real left-button press and release at ``x``, ``y``."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def click(self, selector: str) -> dict:
        """A real click in the middle of the element; returns its :meth:`box`."""
        box = self.box(selector)
        self.click_at(box["x"], box["y"])
        return box

    def click_and_wait(self, selector: str, timeout: float = 30.0) -> None:
        """Click the element and wait for the page the click loads."""
        self.until_loaded(lambda: self.click(selector), timeout)

    def type(self, selector: str, value: str) -> None:
        """Focus the element and type ``value`` into it, as a keyboard would."""
        focused = self.evaluate(f"(() => {{ const e = document.querySelector("
                                f"{json.dumps(selector)}); if (!e) return false; e.focus();"
                                " return true; })()")
        assert focused, f"no element {selector}"
        self.send("Input.insertText", {"text": value})

    def choose_files(self, selector: str, *paths: Path) -> None:
        """Set the files of an ``<input type=file>``, as picking them in the dialog would."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"files": [str(p) for p in paths], "nodeId": node})


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve the WSGI ``app`` on a free loopback port from a thread; yield its origin,
    ``http://127.0.0.1:PORT`` (no trailing slash). The server stops on exit."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
