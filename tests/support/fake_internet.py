#!/usr/bin/python3
# The fake internet's servers (tests/support/fake-internet runs this in its own network
# namespace): DNS on 203.0.113.53 answering the test names below (NXDOMAIN for others), and
# on 203.0.113.5, .6 and .7 a TCP server on ports 80 and 8080 that says "hello from ADDRESS".
import socket, struct, sys, threading

# inside.test: a public name answered with a private address (DNS rebinding).
NAMES = {"web.test": "203.0.113.5", "other.test": "203.0.113.6", "a.pkg.test": "203.0.113.7",
         "inside.test": "10.9.9.9"}


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("203.0.113.53", 53))
    while True:
        q, client = s.recvfrom(4096)
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        name = ".".join(labels).lower()
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        ip = NAMES.get(name)
        a = ip is not None and qtype == 1
        head = q[:2] + struct.pack(">HHHHH", 0x8180 | (0 if ip else 3), 1, 1 if a else 0, 0, 0)
        body = q[12:i + 5]
        if a:
            body += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        s.sendto(head + body, client)


def tcp(address, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        c.sendall(("hello from %s\n" % address).encode())
        c.close()


threads = [threading.Thread(target=dns, daemon=True)]
for last in (5, 6, 7):
    for port in (80, 8080):
        threads.append(threading.Thread(target=tcp, args=("203.0.113.%d" % last, port), daemon=True))
for t in threads:
    t.start()
print("ready", flush=True)
threading.Event().wait()
