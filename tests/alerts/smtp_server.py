"""A real SMTP server process for tests: accepts, refuses (554) or defers (451) each message.

Run as `python tests/alerts/smtp_server.py --mode accept|refuse|defer --failures N --outdir DIR`;
prints `READY <port>` once it listens on 127.0.0.1. Every DATA attempt is appended to
DIR/attempts.log as "<reply code> <recipients>"; each accepted message is saved as DIR/<n>.eml.
"""

import argparse
import signal
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, *, mode: str, failures: int, outdir: Path):
        self.mode = mode
        self.failures = failures
        self.outdir = outdir
        self.attempts = 0
        self.accepted = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        with self.lock:
            self.attempts += 1
            if self.mode == "refuse":
                reply = "554 5.7.1 Message rejected: relaying denied by policy"
            elif self.mode == "defer" and (self.failures < 0 or self.attempts <= self.failures):
                reply = "451 4.3.0 Mail server temporarily rejected message, try again later"
            else:
                self.accepted += 1
                (self.outdir / f"{self.accepted}.eml").write_bytes(envelope.original_content)
                reply = "250 2.0.0 OK: queued"
            with (self.outdir / "attempts.log").open("a") as log:
                log.write(f"{reply[:3]} {','.join(envelope.rcpt_tos)}\n")
            return reply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["accept", "refuse", "defer"], default="accept")
    parser.add_argument("--failures", type=int, default=-1, help="defer: how many (-1: all)")
    parser.add_argument("--outdir", type=Path, required=True)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    controller = Controller(
        Handler(mode=args.mode, failures=args.failures, outdir=args.outdir),
        hostname="127.0.0.1",
        port=port,
    )
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"READY {port}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
