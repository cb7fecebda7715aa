"""`studiolo serve` on an address other than loopback requires its API key: shown inside a network namespace this
test makes (only a loopback device, with a private address on it: nothing outside is reachable), where the server
listens on 10.200.0.1 and a client asks with and without the key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from serve_process import ROOT, server_env

ADDRESS = "10.200.0.1"
NAMESPACE = f"ip link set lo up && ip addr add {ADDRESS}/32 dev lo && exec \"$0\" \"$@\""
CLIENT = r"""
import json, stat, sys, urllib.error, urllib.request
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from serve_process import start_server

server = start_server(Path(sys.argv[2]), "--host", sys.argv[3])

def status(headers):
    request = urllib.request.Request(server.url + "/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)

key_file = Path(sys.argv[2]) / "config" / "serve-api-key"
key = key_file.read_text().strip()
without, refused = status({})
wrong, _ = status({"Authorization": "Bearer " + "x" * 40})
with_key, listed = status({"Authorization": "Bearer " + key})
code = server.stop()
print(json.dumps({"url": server.url, "banner": server.banner, "without": without, "refused": refused,
                  "wrong": wrong, "with_key": with_key, "models": [m["id"] for m in listed["data"]],
                  "mode": stat.S_IMODE(key_file.stat().st_mode), "key": key, "exit": code,
                  "rest": server.rest}))
"""


def test_off_loopback_the_key_is_required_and_kept_private(tmp_path):
    assert shutil.which("unshare") and shutil.which("ip")
    probe = subprocess.run(["unshare", "-n", "sh", "-c", NAMESPACE, "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"cannot make a network namespace here: {probe.stderr}"
    home = tmp_path / "home"
    result = subprocess.run(["unshare", "-n", "sh", "-c", NAMESPACE, sys.executable, "-c", CLIENT,
                             str(Path(__file__).parent), str(home), ADDRESS],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=server_env(home))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["url"] == f"http://{ADDRESS}:" + seen["url"].split(":")[2]
    assert seen["without"] == 401 and seen["refused"]["error"]["type"] == "authentication_error"
    assert seen["wrong"] == 401
    assert seen["with_key"] == 200 and "text.transformers/demo" in seen["models"]
    assert seen["mode"] == 0o600
    assert f"  {seen['key']}" in seen["banner"] and any("serve-api-key" in line for line in seen["banner"])
    assert seen["exit"] == 0
