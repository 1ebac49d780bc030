#!/usr/bin/env python3
"""A real SMTP server for Aiguillage's mail tests (Debian's python3-aiosmtpd).

It requires STARTTLS before anything else (or speaks TLS from the first byte with
--implicit-tls), then AUTH PLAIN or LOGIN with the one user and password given on the
command line, and saves each accepted message, byte for byte, as <n>.eml in the spool
directory (written to a hidden temporary file, then renamed: a reader never sees half a
message). --fail-451 and --fail-550 make it refuse a recipient, temporarily or for good,
so that the client's classification can be tested.

When it listens it prints its port on a line of its own; the tests wait for that line.
"""

import argparse
import asyncio
import itertools
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--spool", required=True, help="directory of the saved <n>.eml")
    parser.add_argument("--implicit-tls", action="store_true",
                        help="TLS from the first byte (port 465 style) instead of STARTTLS")
    parser.add_argument("--fail-451", action="append", default=[], metavar="ADDRESS",
                        help="answer 451 (try again later) to RCPT TO this address")
    parser.add_argument("--fail-550", action="append", default=[], metavar="ADDRESS",
                        help="answer 550 (no such mailbox) to RCPT TO this address")
    return parser.parse_args()


class Spool:
    """Accepts recipients (or refuses those it was told to) and saves messages."""

    def __init__(self, directory, fail_451, fail_550):
        self.directory = directory
        self.fail_451 = {a.lower() for a in fail_451}
        self.fail_550 = {a.lower() for a in fail_550}
        existing = [int(n[:-4]) for n in os.listdir(directory)
                    if n.endswith(".eml") and n[:-4].isdigit()]
        self.numbers = itertools.count(max(existing, default=0) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.fail_451:
            return "451 4.2.1 Mailbox temporarily unavailable: try again later"
        if address.lower() in self.fail_550:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        final = os.path.join(self.directory, "%d.eml" % number)
        temp = os.path.join(self.directory, ".%d.eml.tmp" % number)
        with open(temp, "wb") as f:
            f.write(envelope.original_content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, final)
        return "250 2.0.0 Ok: queued as %d" % number


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    return check


def main():
    args = parse_args()
    os.makedirs(args.spool, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = Spool(args.spool, args.fail_451, args.fail_550)

    def factory():
        return SMTP(
            handler,
            hostname="localhost",
            decode_data=False,
            tls_context=None if args.implicit_tls else context,
            require_starttls=not args.implicit_tls,
            auth_required=True,
            # aiosmtpd only knows of TLS it negotiated itself (STARTTLS); with implicit TLS
            # every connection is encrypted before it says a word.
            auth_require_tls=not args.implicit_tls,
            authenticator=authenticator(args.user, args.password),
            # Room for the tests' large attachments once base64-encoded.
            data_size_limit=64 * 1024 * 1024,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, host=args.host, port=args.port,
        ssl=context if args.implicit_tls else None))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
