"""A hostile HTTP server for the CLI measurements of issues 9 and 27:
`silent` never answers, `drip` sends one byte every half second forever,
`endless` sends a JSON body that never ends, `contradicts` says a job is
COMPLETED on /status and IN_PROGRESS in its record forever, `chat-drip`
streams a chat answer one token every 0.1 s forever, `chat-huge` streams a
196 MB chat answer as fast as it is read. Prints its port on the first line."""
import json, socket, sys, threading, time
mode = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
SSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
def chunk(text):
    c = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return ("data: " + json.dumps(c) + "\n\n").encode()
def h(c):
    request = c.recv(65536)
    if mode == "silent":
        time.sleep(600)
    elif mode == "drip":
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
        try:
            while True:
                c.sendall(b" "); time.sleep(0.5)
        except OSError:
            pass
    elif mode == "contradicts":
        path = request.split(b" ")[1].split(b"?")[0] if b" " in request else b""
        status = "COMPLETED" if path.endswith(b"/status") else "IN_PROGRESS"
        body = json.dumps({"request_id": "req_1", "status": status}).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
        c.close()
    elif mode == "chat-drip":
        c.sendall(SSE)
        i = 0
        try:
            while True:
                c.sendall(chunk("w%d " % i)); i += 1; time.sleep(0.1)
        except OSError:
            pass
    elif mode == "chat-huge":
        c.sendall(SSE)
        piece = chunk("x" * 65536)
        try:
            for _ in range(196 * 1000 * 1000 // 65536):
                c.sendall(piece)
            c.sendall(b"data: [DONE]\n\n")
        except OSError:
            pass
        c.close()
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"items\":\"")
        try:
            while True: c.sendall(b"x"*65536)
        except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
