#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for upload tests (loopback only).

Usage: fault_proxy.py UPSTREAM_PORT PORT_FILE EVENTS_FILE PLAN

Every request is forwarded to 127.0.0.1:UPSTREAM_PORT. The comma-separated PLAN is consumed in
order: a step applies to the next request of its method ("GET:404"; no prefix means POST), and
requests of other methods pass meanwhile. Steps:
  pass          forward, relay the answer
  404           answer 404 without forwarding (an index that does not list the project yet)
  500           read the whole body, answer 500 without forwarding
  forget        read the whole body, answer 200 without forwarding (an index that accepts an
                upload and keeps nothing)
  drop-mid      read about half of the body, then close the connection (nothing forwarded)
  drop-after    forward the whole request, let the upstream store it, then close the client
                connection without relaying the answer
  hold          read the whole request, wait until the file EVENTS_FILE.go exists (at most 10
                minutes), then forward it (even when the client has gone meanwhile) and relay the
                answer: an upload in flight when its client dies
When the plan is used up, requests pass. Each planned step taken is appended to EVENTS_FILE.
Every answer carries "Connection: close".
"""
import os
import socket
import sys
import threading
import time

UPSTREAM = int(sys.argv[1])
PORT_FILE, EVENTS_FILE = sys.argv[2], sys.argv[3]
PLAN = [s for s in sys.argv[4].split(",") if s]
LOCK = threading.Lock()


def next_step(method):
    with LOCK:
        if not PLAN:
            return "pass"
        planned_method, _, step = PLAN[0].rpartition(":")
        if (planned_method or "POST") != method:
            return "pass"
        PLAN.pop(0)
        with open(EVENTS_FILE, "a") as f:
            f.write(f"{method}:{step}\n")
        return step


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def with_close(head):
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n"


def handle(client):
    try:
        head, rest = read_head(client)
        if head is None:
            return
        method = head.split(b" ", 1)[0].decode()
        length = content_length(head)
        step = next_step(method)
        if step == "404":
            client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                           b"Content-Length: 9\r\nConnection: close\r\n\r\nnot found")
            return
        if step == "drop-mid":
            got = len(rest)
            while got < length // 2:
                chunk = client.recv(min(65536, length // 2 - got))
                if not chunk:
                    break
                got += len(chunk)
            client.shutdown(socket.SHUT_RDWR)
            return
        if step in ("500", "forget"):
            got = len(rest)
            while got < length:
                chunk = client.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
            if step == "forget":
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               b"Content-Length: 2\r\nConnection: close\r\n\r\nOK")
                return
            client.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                           b"Content-Length: 14\r\nConnection: close\r\n\r\ninjected fault")
            return
        if step == "hold":
            body = rest
            while len(body) < length:
                chunk = client.recv(65536)
                if not chunk:
                    break
                body += chunk
            deadline = time.monotonic() + 600
            while not os.path.exists(EVENTS_FILE + ".go") and time.monotonic() < deadline:
                time.sleep(0.05)
            upstream = socket.create_connection(("127.0.0.1", UPSTREAM))
            upstream.sendall(with_close(head) + body)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
            upstream.close()
            client.sendall(answer)
            return
        upstream = socket.create_connection(("127.0.0.1", UPSTREAM))
        upstream.sendall(with_close(head) + rest)
        got = len(rest)
        while got < length:
            chunk = client.recv(min(1 << 20, length - got))
            if not chunk:
                upstream.close()
                return
            upstream.sendall(chunk)
            got += len(chunk)
        answer_head, answer_rest = read_head(upstream)
        if step == "drop-after":
            # Let the upstream finish storing, then vanish without an answer.
            while upstream.recv(65536):
                pass
            upstream.close()
            client.shutdown(socket.SHUT_RDWR)
            return
        if answer_head is None:
            upstream.close()
            return
        client.sendall(with_close(answer_head) + answer_rest)
        while True:
            chunk = upstream.recv(65536)
            if not chunk:
                break
            client.sendall(chunk)
        upstream.close()
    except OSError:
        pass
    finally:
        client.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    with open(PORT_FILE, "w") as f:
        f.write(f"{server.getsockname()[1]}\n")
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
