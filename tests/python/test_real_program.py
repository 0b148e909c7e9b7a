"""A small real asyncio program: a localhost web site, a crawler in AsyncPool
workers, and CPU work through to_interpreter next to asyncio.to_thread.

The server (stdlib asyncio streams on 127.0.0.1, port 0) runs in the main
event loop and serves deterministic HTML pages from ``_async_tasks.make_page``.
Worker coroutines fetch pages from it over TCP, parse them with html.parser
and hash them with hashlib.  Every answer is checked against the same
computation done locally.  No network beyond 127.0.0.1.
"""

import asyncio
import hashlib
import re

import pytest

import _async_tasks as t
import interpool

TIMEOUT = 60
PAGE_RE = re.compile(r"^/page/(\d+)$")


class Site:
    """An HTTP/1.0 server for /page/<i>, counting the requests it served."""

    def __init__(self, n_pages=t.N_PAGES):
        self.n_pages = n_pages
        self.requests = []
        self.server = None

    async def handle(self, reader, writer):
        try:
            request_line = (await reader.readline()).decode("latin-1").strip()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # skip headers
            method, path, _ = request_line.split(" ", 2)
            self.requests.append(path)
            match = PAGE_RE.match(path)
            if method == "GET" and match and int(match.group(1)) < self.n_pages:
                body = t.make_page(int(match.group(1)), self.n_pages).encode("utf-8")
                status = "200 OK"
            else:
                body = b"<html><title>Not found</title></html>"
                status = "404 Not Found"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


def expected_page(i, n=t.N_PAGES):
    """The local answer for page i."""
    body = t.make_page(i, n).encode("utf-8")
    result = t.analyze(body)
    result.update(path=f"/page/{i}", status=200, marker="default")
    return result


def reachable_from(start, n=t.N_PAGES):
    seen, todo = {start}, [start]
    while todo:
        for j in t.page_links(todo.pop(), n):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return seen


def test_local_answers_are_sane():
    page = expected_page(3)
    assert page["title"] == "Page 3 & friends"
    assert page["links"] == [f"/page/{j}" for j in t.page_links(3)]
    assert page["tags"] > 10 and len(page["sha256"]) == 64
    assert reachable_from(0) != set(range(t.N_PAGES))  # some pages are not linked from 0


def test_crawl_parse_and_hash_in_workers(monkeypatch):
    monkeypatch.setattr(t, "MARKER", "main")  # workers report "default": they ran elsewhere

    async def crawl(apool, port):
        """Breadth-first crawl from page 0; each page fetched once, by a worker."""
        results, seen = {}, {"/page/0"}
        frontier = ["/page/0"]
        while frontier:
            pages = await asyncio.gather(*(apool.run(t.fetch_and_analyze, port, p) for p in frontier))
            frontier = []
            for page in pages:
                results[page["path"]] = page
                for link in page["links"]:
                    if link not in seen:
                        seen.add(link)
                        frontier.append(link)
        return results

    async def main():
        async with Site() as site, interpool.AsyncPool(2, concurrency=4) as apool:
            crawled = await crawl(apool, site.port)
            # Every page, directly, through apool.map, in order.
            paths = [f"/page/{i}" for i in range(t.N_PAGES)]
            mapped = [page async for page in apool.map(_fetch_on(site.port), paths)]
            missing = await apool.run(t.fetch_and_analyze, site.port, "/page/999")
            return crawled, mapped, missing, list(site.requests)

    crawled, mapped, missing, requests = asyncio.run(asyncio.wait_for(main(), TIMEOUT))

    reachable = reachable_from(0)
    assert set(crawled) == {f"/page/{i}" for i in reachable}
    for i in reachable:
        assert crawled[f"/page/{i}"] == expected_page(i)
    assert mapped == [expected_page(i) for i in range(t.N_PAGES)]
    assert missing == {"path": "/page/999", "status": 404}
    # The server saw each request once: the crawl fetched no page twice.
    assert sorted(requests) == sorted(
        [f"/page/{i}" for i in reachable] + [f"/page/{i}" for i in range(t.N_PAGES)] + ["/page/999"]
    )


def _fetch_on(port):
    import functools

    return functools.partial(t.fetch_and_analyze, port)


def test_task_group_mixes_to_interpreter_and_to_thread():
    rounds = 2000

    async def main():
        async with Site() as site, interpool.AsyncPool(2) as apool:
            bodies = {}
            async with asyncio.TaskGroup() as tg:
                fetches = {
                    i: tg.create_task(apool.run(t.fetch_body, site.port, f"/page/{i}")) for i in range(t.N_PAGES)
                }
            for i, task in fetches.items():
                status, body = task.result()
                assert status == 200
                bodies[i] = body
            # CPU work in interpreters and I/O-ish work on threads, in one TaskGroup.
            async with asyncio.TaskGroup() as tg:
                hashed = {
                    i: tg.create_task(interpool.to_interpreter(t.hash_rounds, b, rounds)) for i, b in bodies.items()
                }
                parsed = {i: tg.create_task(asyncio.to_thread(t.analyze, b)) for i, b in bodies.items()}
                digests = {i: tg.create_task(asyncio.to_thread(hashlib.sha256, b)) for i, b in bodies.items()}
            return (
                bodies,
                {i: task.result() for i, task in hashed.items()},
                {i: task.result() for i, task in parsed.items()},
                {i: task.result().hexdigest() for i, task in digests.items()},
            )

    bodies, hashed, parsed, digests = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    for i in range(t.N_PAGES):
        body = t.make_page(i).encode("utf-8")
        assert bodies[i] == body
        assert hashed[i] == t.hash_rounds(body, rounds)
        assert parsed[i] == t.analyze(body)
        assert digests[i] == hashlib.sha256(body).hexdigest()


def test_a_failing_fetch_fails_the_task_group():
    async def main():
        async with Site() as site, interpool.AsyncPool(1) as apool:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(apool.run(t.fetch_and_analyze, site.port, "/page/1"))
                # Nothing listens on port 1 of 127.0.0.1: the connection is refused in the worker.
                tg.create_task(apool.run(t.fetch_and_analyze, 1, "/page/1"))

    with pytest.raises(ExceptionGroup) as info:
        asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert info.group_contains(ConnectionRefusedError) or info.group_contains(OSError)
