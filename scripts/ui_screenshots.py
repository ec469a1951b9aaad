"""Screenshots of the habackup integration in Home Assistant's real UI, for the README.

Run by ``scripts/ui-screenshots.sh`` in a venv with Home Assistant and its frontend (both from
PyPI), beside Debian's headless Chromium:

1. a temporary config dir with the integration (``custom_components/habackup``, the extension
   from ``python/``) and ``hass -c`` on a free port of 127.0.0.1;
2. onboarding through Home Assistant's API (user, location, analytics, integration step);
3. a folder location added through the config-flow API, and a backup made on it through the
   websocket API;
4. Chromium, driven over the DevTools protocol, logged in with the onboarding's tokens, captures
   the "add location" dialog (the location types, then the S3 form) and Settings → System →
   Backups with the location and its backup.

Every page's text, shadow roots included, is searched for raw translation keys
(``component.habackup.…``, ``ui.panel.…``): the script fails when the UI shows one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
S3_MENU_OPTION = "S3 or S3-compatible (AWS, MinIO, Garage, Ceph, Cloudflare R2, Backblaze B2)"
RAW_KEY = re.compile(r"\b(?:component\.habackup|ui\.(?:panel|dialogs|components|common))\.[\w.]+")
# Deep text of the page: Home Assistant's UI lives in nested shadow roots.
DEEP_TEXT_JS = """
(() => {
  const out = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
      else if (!['STYLE', 'SCRIPT', 'TEMPLATE'].includes(child.nodeName)) walk(child);
    }
  };
  walk(document);
  return out.join(' ').replace(/\\s+/g, ' ');
})()
"""
# Scrolls the first heading (shadow roots included) whose text is the given text to the top.
SCROLL_TO_JS = """
((wanted) => {
  const stack = [document];
  while (stack.length) {
    const node = stack.pop();
    if (node.shadowRoot) stack.push(node.shadowRoot);
    for (const child of node.children || []) stack.push(child);
    if (node.nodeType === Node.ELEMENT_NODE && node.children.length === 0
        && node.textContent.trim() === wanted) {
      node.scrollIntoView({block: 'start'});
      return true;
    }
  }
  return false;
})
"""
# Clicks the first element (shadow roots included) whose own text is exactly the given text.
CLICK_TEXT_JS = """
((wanted) => {
  const stack = [document];
  while (stack.length) {
    const node = stack.pop();
    if (node.shadowRoot) stack.push(node.shadowRoot);
    for (const child of node.children || []) stack.push(child);
    if (node.nodeType === Node.ELEMENT_NODE && node.textContent.trim() === wanted) {
      node.click();
      return true;
    }
  }
  return false;
})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"ui-screenshots: {message}", flush=True)


@contextlib.contextmanager
def home_assistant(config: Path, port: int) -> Iterator[str]:
    """``hass -c config`` on ``port``; its URL once it answers."""
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / "habackup").symlink_to(ROOT / "custom_components" / "habackup")
    (config / "configuration.yaml").write_text(
        f"""homeassistant:
  name: Home
  time_zone: Europe/Amsterdam
  unit_system: metric
  country: NL
http:
  server_host: {HOST}
  server_port: {port}
frontend:
config:
backup:
logger:
  default: info
"""
    )
    env = os.environ | {"PYTHONPATH": str(ROOT / "python")}
    # habackup comes from the checkout (PYTHONPATH), not from PyPI.
    argv = [sys.executable, "-m", "homeassistant", "-c", str(config)]
    argv += ["--skip-pip-packages", "habackup"]
    with open(config / "hass.out", "wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 600  # the first start installs the integrations' needs
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"hass exited:\n{(config / 'hass.out').read_text()[-4000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=1).close()
                break
            time.sleep(1)
        else:
            raise SystemExit("hass did not answer within 10 minutes")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


async def onboard(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """Onboarding through the API, as the first visit to the UI does it; the tokens."""
    client_id = f"{url}/"
    for _ in range(120):
        async with session.get(f"{url}/api/onboarding") as response:
            if response.status == 200:
                break
        await asyncio.sleep(1)
    user = {
        "client_id": client_id,
        "name": "Demo",
        "username": "demo",
        "password": "demo-password",
        "language": "en",
    }
    async with session.post(f"{url}/api/onboarding/users", json=user) as response:
        response.raise_for_status()
        code = (await response.json())["auth_code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
    async with session.post(f"{url}/auth/token", data=form) as response:
        response.raise_for_status()
        tokens: dict[str, Any] = await response.json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    for step, body in (
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": client_id, "redirect_uri": f"{url}/?auth_callback=1"}),
    ):
        async with session.post(f"{url}/api/onboarding/{step}", json=body, headers=auth) as r:
            r.raise_for_status()
    return tokens


async def add_folder_location(
    session: aiohttp.ClientSession, url: str, auth: dict[str, str], folder: Path
) -> str:
    """A folder location through the config-flow API (the dialog's own calls); its entry id."""
    flows = f"{url}/api/config/config_entries/flow"
    async with session.post(flows, json={"handler": "habackup"}, headers=auth) as response:
        response.raise_for_status()
        flow = await response.json()
    for step in ({"next_step_id": "folder"}, {"path": str(folder)}):
        async with session.post(f"{flows}/{flow['flow_id']}", json=step, headers=auth) as r:
            r.raise_for_status()
            flow = await r.json()
    if flow.get("type") != "create_entry":
        raise SystemExit(f"the folder location was not added: {flow}")
    return str(flow["result"]["entry_id"])


async def make_backup(session: aiohttp.ClientSession, url: str, token: str, agent: str) -> None:
    """A backup on the location, through the websocket API, waited for."""
    async with session.ws_connect(f"{url}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        ids = iter(range(1, 1000))

        async def call(**message: Any) -> Any:
            await ws.send_json({"id": next(ids), **message})
            while True:
                answer = await ws.receive_json()
                if answer.get("type") == "result":
                    if not answer["success"]:
                        raise SystemExit(f"{message['type']}: {answer['error']}")
                    return answer["result"]

        for _ in range(60):  # the location's agent appears once its entry has loaded
            agents = await call(type="backup/agents/info")
            if any(a["agent_id"] == agent for a in agents["agents"]):
                break
            await asyncio.sleep(1)
        await call(type="backup/generate", agent_ids=[agent], name="Before the upgrade")
        for _ in range(300):
            info = await call(type="backup/info")
            done = info["last_action_event"] or {}
            if info["backups"] and done.get("state") == "completed":
                return
            await asyncio.sleep(1)
        raise SystemExit(f"no backup on {agent}: {info}")


class Browser:
    """Headless Chromium over the DevTools protocol (one page)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = iter(range(1, 1_000_000))

    async def send(self, method: str, **params: Any) -> Any:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            answer = await self.ws.receive_json()
            if answer.get("id") == call_id:
                if "error" in answer:
                    raise SystemExit(f"{method}: {answer['error']}")
                return answer.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def goto(self, url: str, settle: float = 6) -> None:
        await self.send("Page.navigate", url=url)
        await asyncio.sleep(settle)

    async def text(self) -> str:
        return str(await self.evaluate(DEEP_TEXT_JS))

    async def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = await self.text()
            if text in page:
                return page
            await asyncio.sleep(1)
        shot = await self.send("Page.captureScreenshot", format="png")
        failed = Path(tempfile.gettempdir()) / "habackup-ui-failed.png"
        failed.write_bytes(base64.b64decode(shot["data"]))
        raise SystemExit(f"the page never showed {text!r} (see {failed}); it shows: {page[:3000]}")

    async def click(self, text: str) -> None:
        if not await self.evaluate(f"{CLICK_TEXT_JS}({json.dumps(text)})"):
            raise SystemExit(f"nothing to click labelled {text!r}")

    async def scroll_to(self, text: str) -> None:
        if not await self.evaluate(f"{SCROLL_TO_JS}({json.dumps(text)})"):
            raise SystemExit(f"no heading {text!r} to scroll to")

    async def shoot(self, path: Path, page: str) -> None:
        if found := sorted(set(RAW_KEY.findall(page))):
            raise SystemExit(f"{path.name}: the UI shows raw translation keys: {found}")
        await asyncio.sleep(1.5)  # animations (dialogs open with one)
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        log(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


@contextlib.asynccontextmanager
async def chromium(
    session: aiohttp.ClientSession, profile: Path, chromium_bin: str
) -> AsyncIterator[Browser]:
    port = free_port()
    argv = [
        chromium_bin,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        "--window-size=1280,860",
        "--force-device-scale-factor=1",
        "about:blank",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://{HOST}:{port}/json/list") as response:
                    pages = [p for p in await response.json() if p["type"] == "page"]
                    if pages:
                        break
            await asyncio.sleep(0.5)
        else:
            raise SystemExit("chromium did not start")
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            browser = Browser(ws)
            await browser.send("Page.enable")
            await browser.send("Runtime.enable")
            yield browser
    finally:
        process.terminate()
        process.wait(30)


async def main(out: Path, chromium_bin: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="habackup-ui-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        log(f"starting Home Assistant on {HOST}:{port} (config {tmp / 'config'})")
        try:
            await capture(tmp, port, out, chromium_bin)
        except BaseException:
            hass_log = tmp / "config" / "home-assistant.log"
            if hass_log.exists():
                # Errors and warnings with their tracebacks.
                problems, keep = [], False
                for line in hass_log.read_text().splitlines():
                    if line[:4].isdigit():
                        keep = " ERROR " in line or " WARNING " in line
                    if keep:
                        problems.append(line[:400])
                print("\n".join(problems[-80:]), file=sys.stderr)
            raise


async def capture(tmp: Path, port: int, out: Path, chromium_bin: str) -> None:
    with home_assistant(tmp / "config", port) as url:
        async with aiohttp.ClientSession() as session:
            tokens = await onboard(session, url)
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            entry_id = await add_folder_location(session, url, auth, tmp / "nas" / "backups")
            await make_backup(session, url, tokens["access_token"], f"habackup.{entry_id}")
            log("onboarded; a folder location with a backup on it")
            async with chromium(session, tmp / "chromium", chromium_bin) as browser:
                await browser.goto(url, settle=2)
                stored = {
                    "access_token": tokens["access_token"],
                    "token_type": "Bearer",
                    "expires_in": tokens["expires_in"],
                    "refresh_token": tokens["refresh_token"],
                    "hassUrl": url,
                    "clientId": f"{url}/",
                    "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
                }
                await browser.evaluate(
                    f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(stored))})"
                )
                await browser.goto(f"{url}/config/integrations/dashboard/add?domain=habackup")
                await browser.wait_for("Do you want to set up habackup?")
                await browser.click("OK")
                page = await browser.wait_for("S3 or S3-compatible")
                await browser.shoot(out / "add-location.png", page)
                await browser.click(S3_MENU_OPTION)
                page = await browser.wait_for("Endpoint URL")
                await browser.shoot(out / "add-s3-location.png", page)
                await browser.goto(f"{url}/config/backup/overview")
                page = await browser.wait_for("1 manual backup")
                await browser.shoot(out / "backups-overview.png", page)
                await browser.goto(f"{url}/config/backup/backups")
                page = await browser.wait_for("Before the upgrade")
                await browser.shoot(out / "backups-list.png", page)
                await browser.goto(f"{url}/config/backup/settings")
                page = await browser.wait_for("This system habackup")
                await browser.scroll_to("Locations")
                await browser.shoot(out / "backup-locations.png", page)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    asyncio.run(main(args.out.resolve(), args.chromium))
