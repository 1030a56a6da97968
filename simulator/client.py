"""Python API of the simulator: start it as its own process and drive its control interface.

    with SimulatorProcess(deals=500, clock="frozen") as sim:
        url = sim.webhook_url
        sim.control.apply_changes(new_deals=3, stage_moves=5)
        truth = sim.control.truth()
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests


class SimulatorError(RuntimeError):
    pass


class SimulatorControl:
    """The control interface (`/_sim/...`) of a running simulator; `secret` is its first webhook's secret."""

    def __init__(self, base_url: str, secret: str, timeout: float = 300.0) -> None:
        self.base = base_url.rstrip("/") + "/_sim"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["X-Simulator-Secret"] = secret

    def _call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.request(verb, self.base + path, json=body, timeout=self.timeout)
        if response.status_code != 200:
            raise SimulatorError(f"{verb} {path}: {response.status_code} {response.text}")
        return response.json()

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def advance(self, seconds: float) -> int:
        return int(self._call("POST", "/clock", {"advance": seconds})["now"])

    def apply_changes(self, advance: float | None = None, **counts: Any) -> list[dict[str, Any]]:
        """Applies changes at portal time (after moving the clock by `advance` seconds, if given)."""
        body: dict[str, Any] = dict(counts)
        if advance is not None:
            body["advance"] = advance
        return self._call("POST", "/changes", body)["changes"]

    def live(self, interval_seconds: float, **changes: int) -> dict[str, Any]:
        return self._call("POST", "/live", {"interval_seconds": interval_seconds, "changes": changes})

    def stop_live(self) -> dict[str, Any]:
        return self._call("POST", "/live", {"stop": True})

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "/faults", settings)

    def set_limits(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "/limits", settings)

    def set_costs(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "/costs", settings)

    def authorize(self, client_id: str | None = None, user_id: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id}
        if client_id:
            body["client_id"] = client_id
        return self._call("POST", "/oauth/authorize", body)

    def outbound(self, handler: str, events: list[str]) -> str:
        """Sets up an outbound webhook calling `handler` on `events`; returns its application token."""
        return str(self._call("POST", "/outbound", {"handler": handler, "events": events})["application_token"])

    def truth(self) -> dict[str, Any]:
        return self._call("GET", "/truth")

    def requests_served(self) -> dict[str, int]:
        return self.status()["requests"]

    def reset_stats(self) -> None:
        self._call("POST", "/stats/reset", {})

    def reset(self) -> None:
        """Back to the portal as it started: rows, clock, limits, costs, faults, tokens, counters."""
        self._call("POST", "/reset", {})


class SimulatorProcess:
    """Runs `python -m b24wh_simulator` with the given options until the context exits.

    Keyword options map to command-line flags (`fault_drop=0.1` -> `--fault-drop 0.1`; `True` -> a bare
    flag). The port defaults to a free one. Generated portals are cached, so a second start is quick.
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("port", 0)
        self.args = [sys.executable, "-m", "b24wh_simulator"]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                self.args.append(flag)
            elif value is not None and value is not False:
                self.args += [flag, str(value)]
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self.stderr_lines: list[str] = []
        self.control: SimulatorControl

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 900.0) -> SimulatorProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                          env.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=env)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line_holder: list[str] = []
        reader = threading.Thread(target=lambda: line_holder.append(self._read_ready()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line_holder or not line_holder[0]:
            self.stop()
            raise SimulatorError("simulator did not start: " + " ".join(self.stderr_lines[-5:]))
        self.ready = json.loads(line_holder[0])
        self.control = SimulatorControl(self.base_url, self.webhook_url.rstrip("/").rsplit("/", 1)[1])
        return self

    def _read_ready(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("READY "):
                return line[len("READY "):]
        return ""

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.rstrip())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def base_url(self) -> str:
        return str(self.ready["base_url"])

    @property
    def webhook_url(self) -> str:
        return str(self.ready["webhook_url"])

    @property
    def timezone(self) -> str:
        """The portal's IANA time zone."""
        return str(self.ready["timezone"])

    @property
    def oauth(self) -> dict[str, str]:
        return dict(self.ready["oauth"])
