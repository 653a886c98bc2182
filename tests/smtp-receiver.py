#!/usr/bin/env python3
"""An SMTP server for the daemon's mail alert test (t6021).

Usage: smtp-receiver.py OUTDIR PORTFILE

Listens on 127.0.0.1 on a free port (Python's smtpd, a real SMTP
implementation), writes the port to PORTFILE, and stores every message it
accepts as OUTDIR/N.eml, with the envelope recipients in OUTDIR/N.rcpt.
"""
import asyncore
import os
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402  (deprecated in 3.11, still the standard library's)


class Server(smtpd.SMTPServer):
    n = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        Server.n += 1
        base = os.path.join(sys.argv[1], str(Server.n))
        with open(base + ".rcpt.tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(rcpttos) + "\n")
        os.rename(base + ".rcpt.tmp", base + ".rcpt")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.rename(base + ".eml.tmp", base + ".eml")
        return None


def main():
    server = Server(("127.0.0.1", 0), None, decode_data=False)
    port = server.socket.getsockname()[1]
    with open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(port))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    asyncore.loop()


main()
