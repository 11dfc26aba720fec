#!/usr/bin/env python3
"""A tiny TCP balancer for the chaos run: round robin over the backends per
connection, skipping one that refuses (a killed gateway), so WeChat's retry of a
callback whose connection died reaches a live replica. Like a cloud load balancer
without health checks: a connection already open to a replica that dies is reset.

    balancer.py LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]   (all on 127.0.0.1)
"""
import asyncio
import itertools
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
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


async def main():
    listen, backends = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
    turn = itertools.cycle(range(len(backends)))

    async def handle(client_reader, client_writer):
        first = next(turn)
        for i in range(len(backends)):
            port = backends[(first + i) % len(backends)]
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
