#!/usr/bin/env python3
"""A TCP forwarder that can add latency, for bench/cluster.sh: one API host's
database link goes through it, and during the drill's latency phase every
byte the host sends to PostgreSQL waits `--delay-ms` before it is passed on
(as `tc netem delay` on the host's outgoing link would; this machine's kernel
has no netem). Order within a connection is kept.

    python3 bench/tcp_delay.py --listen 127.0.0.1:6432 --target 10.77.0.10:5432 --delay-ms 50

SIGUSR1 turns the delay on, SIGUSR2 off (it starts off). Standard library only.
"""

import argparse
import asyncio
import signal
import time

DELAY = {"on": False, "seconds": 0.05}


async def pump(reader, writer, delayed):
    """Copies reader to writer; chunks read while the delay is on are passed
    on `DELAY` after they arrived (never before an earlier chunk)."""
    queue = asyncio.Queue()

    async def read():
        try:
            while True:
                data = await reader.read(65536)
                due = time.monotonic() + (DELAY["seconds"] if delayed and DELAY["on"] else 0)
                await queue.put((due, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((0, b""))

    async def write():
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except (ConnectionError, OSError):
                pass

    await asyncio.gather(read(), write())


async def serve(args):
    target_host, target_port = args.target.rsplit(":", 1)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(
                target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, True),
                             pump(server_reader, client_writer, False))

    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, host, int(port))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: DELAY.update(on=True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: DELAY.update(on=False))
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True, help="host:port to accept on")
    p.add_argument("--target", required=True, help="host:port to forward to")
    p.add_argument("--delay-ms", type=float, default=50)
    args = p.parse_args()
    DELAY["seconds"] = args.delay_ms / 1000
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
