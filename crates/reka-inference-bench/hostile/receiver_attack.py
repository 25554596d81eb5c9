"""Attacks on a webhook receiver listening at 127.0.0.1:PORT, for the CLI
measurements of issue 27 (`run --webhook-listen`):

  flood N      N forged deliveries for unknown ids, over 8 kept-alive connections
  slowloris N  N connections that send half a request head and never finish it,
               reopened as soon as the receiver closes them, for 60 s
  bodies N     N connections that each send 1 MiB of a body they never finish,
               reopened when closed, held for 60 s
  oversize     one request declaring a 64 MiB body, none of it sent; prints
               how long the answer took and its status line

Usage: receiver_attack.py MODE PORT [N]. Waits up to 30 s for the port to
accept connections first."""
import socket, sys, threading, time

mode, port = sys.argv[1], int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
addr = ("127.0.0.1", port)

def connect():
    deadline = time.time() + 30
    while True:
        try:
            return socket.create_connection(addr, timeout=30)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)

def flood(count):
    body_of = lambda i: ('{"request_id":"forged-%d","status":"COMPLETED","output":{"images":[]}}' % i).encode()
    c = connect()
    f = c.makefile("rb")
    for i in count:
        body = body_of(i)
        try:
            c.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            line = f.readline()
            length = 0
            while True:
                h = f.readline()
                if h in (b"\r\n", b""):
                    break
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            f.read(length)
            if b"close" in line or not line:
                raise OSError
        except OSError:
            c = connect(); f = c.makefile("rb")

def hold(opener, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            c = connect()
            opener(c)
            c.settimeout(max(0.1, end - time.time()))
            c.recv(1)  # returns when the receiver closes it
        except OSError:
            time.sleep(0.01)

if mode == "flood":
    threads = [threading.Thread(target=flood, args=(range(k, n, 8),)) for k in range(8)]
    began = time.time()
    for t in threads: t.start()
    for t in threads: t.join()
    print("flood: %d forged deliveries in %.1f s" % (n, time.time() - began), file=sys.stderr)
elif mode in ("slowloris", "bodies"):
    def slow(c):
        c.sendall(b"POST / HTTP/1.1\r\nhost:")
    def body(c):
        c.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1048577\r\n\r\n" + b" " * 1048576)
    opener = slow if mode == "slowloris" else body
    threads = [threading.Thread(target=hold, args=(opener,), daemon=True) for _ in range(n)]
    for t in threads: t.start()
    time.sleep(60)
elif mode == "oversize":
    c = connect()
    began = time.time()
    c.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 67108864\r\n\r\n")
    c.settimeout(10)
    try:
        line = c.makefile("rb").readline().decode().strip() or "(closed, no answer)"
    except OSError:
        line = "(no answer within 10 s)"
    print("oversize: %s after %.2f s" % (line, time.time() - began))
