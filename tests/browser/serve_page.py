#!/usr/bin/python3
"""Drives `dalle serve`'s page in Debian's headless chromium over the DevTools protocol, as a user
would: focus the prompt box, type, press Enter, wait for the images, screenshot; then the same page
on a phone-sized screen. Prints one JSON line: images shown, whether they all decoded, history
entries, the phone layout's scroll width. Exit 1 with a message when something fails.

/usr/bin/python3 tests/browser/serve_page.py --url http://127.0.0.1:8080/ --prompt "a red circle" \\
    --images 4 --screenshot page.png --phone-screenshot phone.png
"""
import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    def __init__(self, ws_url, timeout):
        self.ws = websocket.create_connection(ws_url, timeout=timeout)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            if self.eval(expression):
                return
            time.sleep(0.1)
        status = self.eval("document.getElementById('status').textContent")
        raise RuntimeError(f"timed out waiting for {what}; the page says {status!r}")

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def key(self, key, code, vk, text=None):
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", **down)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--phone-screenshot", required=True)
    ap.add_argument("--timeout", type=float, default=90)
    args = ap.parse_args()

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="dalle_chromium_")
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--no-first-run", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                             "--window-size=1100,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 30
        targets = None
        while time.time() < end and not targets:
            try:
                targets = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                           if t.get("type") == "page"]
            except OSError:
                time.sleep(0.2)
        if not targets:
            sys.exit("chromium's DevTools endpoint did not come up")
        page = Page(targets[0]["webSocketDebuggerUrl"], args.timeout)
        page.call("Page.enable")
        page.call("Page.navigate", url=args.url)
        page.wait_for("document.readyState === 'complete' && !!document.getElementById('prompt')", 30, "the page")
        page.eval("localStorage.clear()")
        page.eval("document.getElementById('prompt').focus()")
        page.call("Input.insertText", text=args.prompt)
        page.key("Enter", "Enter", 13, "\r")
        page.wait_for(f"document.querySelectorAll('#results img').length === {args.images}", args.timeout,
                      f"{args.images} images")
        page.wait_for("Array.from(document.querySelectorAll('#results img')).every(i => i.complete)", 10, "decoding")
        loaded = page.eval("Array.from(document.querySelectorAll('#results img')).every(i => i.naturalWidth > 0)")
        downloads = page.eval("document.querySelectorAll('#results a[download]').length")
        history = page.eval("document.querySelectorAll('#history button').length")
        page.screenshot(args.screenshot)
        page.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
        time.sleep(0.3)
        scroll_width = page.eval("document.documentElement.scrollWidth")
        page.screenshot(args.phone_screenshot)
        print(json.dumps({"images": page.eval("document.querySelectorAll('#results img').length"), "loaded": loaded,
                          "downloads": downloads, "history": history, "phone_scroll_width": scroll_width,
                          "status": page.eval("document.getElementById('status').textContent")}))
    except RuntimeError as e:
        sys.exit(f"serve_page: {e}")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
