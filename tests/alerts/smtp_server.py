"""A real SMTP server process for tests: accepts, refuses (554) or defers (451) each message,
and refuses the recipients named with --unknown (550 at RCPT: no such mailbox).

Run as `python tests/alerts/smtp_server.py --mode accept|refuse|defer --failures N --outdir DIR
[--unknown a@x,b@y]`; prints `READY <port>` once it listens on 127.0.0.1. Every DATA attempt is
appended to DIR/attempts.log as "<reply code> <recipients>", every refused recipient as
"550 <address>"; each accepted message is saved as DIR/<n>.eml.
"""

import argparse
import signal
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, *, mode: str, failures: int, outdir: Path, unknown: set[str]):
        self.mode = mode
        self.unknown = unknown
        self.failures = failures
        self.outdir = outdir
        self.attempts = 0
        self.accepted = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.unknown:
            with self.lock, (self.outdir / "attempts.log").open("a") as log:
                log.write(f"550 {address}\n")
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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
    parser.add_argument("--unknown", default="", help="addresses refused at RCPT, comma-separated")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    controller = Controller(
        Handler(
            mode=args.mode,
            failures=args.failures,
            outdir=args.outdir,
            unknown={address for address in args.unknown.split(",") if address},
        ),
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
