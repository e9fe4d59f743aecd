#!/usr/bin/env python3
"""A small SMTP receiver for the drills: accepts every message and appends one
line per message to a log file — `<unix time>\t<Message-ID>\t<recipient>\t
<subject>` — written and flushed before the final `250`, so that whatever the
sender was told was delivered is in the file. Killing the process is how a
drill makes the mail server go away; starting it again on the same port with
the same file brings it back.

    python3 bench/smtp_sink.py --port 2525 --log /tmp/mail.log

Python 3 standard library only. No TLS, no authentication: start the server
with MAIL_TLS=off and no MAIL_USER.
"""

import argparse
import socketserver
import threading
import time

LOCK = threading.Lock()


def header(lines, name):
    """The first header `name` (folded lines joined), or ''."""
    prefix = name.lower() + ":"
    for i, line in enumerate(lines):
        if line == b"":
            break
        if line.lower().startswith(prefix.encode()):
            value = line[len(prefix):]
            for more in lines[i + 1:]:
                if more[:1] in (b" ", b"\t"):
                    value += more
                else:
                    break
            return value.decode("utf-8", "replace").strip()
    return ""


class Session(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 drill-sink ESMTP")
        recipients = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250-drill-sink\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb == b"MAIL":
                recipients = []
                self.reply("250 OK")
            elif verb == b"RCPT":
                recipients.append(line.strip()[8:].decode("utf-8", "replace").strip("<> :"))
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 go ahead")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data:
                        return  # the sender went away mid-message: nothing delivered
                    data = data.rstrip(b"\r\n")
                    if data == b".":
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                entry = "\t".join([f"{time.time():.3f}", header(lines, "Message-ID"),
                                   ",".join(recipients), header(lines, "Subject")])
                with LOCK:
                    with open(self.server.log_path, "a", encoding="utf-8") as f:
                        f.write(entry.replace("\n", " ") + "\n")
                self.reply("250 OK queued")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:  # RSET, NOOP and anything else
                self.reply("250 OK")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True, help="file the messages' lines are appended to")
    args = p.parse_args()
    server = Server((args.host, args.port), Session)
    server.log_path = args.log
    server.serve_forever()


if __name__ == "__main__":
    main()
