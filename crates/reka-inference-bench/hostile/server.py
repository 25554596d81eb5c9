"""A hostile HTTP server for the CLI measurements of issue 9: `silent`
never answers, `drip` sends one byte every half second forever, `endless`
sends a JSON body that never ends. Prints its port on the first line."""
import socket, sys, threading, time
mode = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
def h(c):
    c.recv(65536)
    if mode == "silent":
        time.sleep(600)
    elif mode == "drip":
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
        try:
            while True:
                c.sendall(b" "); time.sleep(0.5)
        except OSError:
            pass
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"items\":\"")
        try:
            while True: c.sendall(b"x"*65536)
        except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
