#!/usr/bin/python3
# The fake internet's servers (tests/support/fake-internet runs this in its own network
# namespace): DNS on 203.0.113.53, over UDP and TCP, answering the test names below (NXDOMAIN
# for others); on 203.0.113.5, .6 and .7 and on 2001:db8:ffff::99 a TCP server on ports 80 and
# 8080 that says "hello from ADDRESS".
import socket, struct, threading

# inside.test: a public name answered with a private address (DNS rebinding). many.test: more
# addresses than a 512-byte UDP answer holds (truncated there: the client asks again over TCP).
NAMES = {"web.test": ["203.0.113.5"], "other.test": ["203.0.113.6"],
         "a.pkg.test": ["203.0.113.7"], "inside.test": ["10.9.9.9"],
         "many.test": ["203.0.113.5"] + ["203.0.113.%d" % i for i in range(100, 139)],
         "web6.test": ["2001:db8:ffff::99"]}


def answer(q, udp):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    name = ".".join(labels).lower()
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    known = name in NAMES
    family, rtype = (socket.AF_INET, 1) if qtype == 1 else (socket.AF_INET6, 28)
    records = b""
    count = 0
    for ip in NAMES.get(name, []) if qtype in (1, 28) else []:
        if (":" in ip) != (family == socket.AF_INET6):
            continue
        raw = socket.inet_pton(family, ip)
        records += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(raw)) + raw
        count += 1
    flags = 0x8180 | (0 if known else 3)
    body = q[12:i + 5]
    if udp and 12 + len(body) + len(records) > 512:
        flags |= 0x0200  # truncated
        records, count = b"", 0
    return q[:2] + struct.pack(">HHHHH", flags, 1, count, 0, 0) + body + records


def dns_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("203.0.113.53", 53))
    while True:
        q, client = s.recvfrom(4096)
        s.sendto(answer(q, True), client)


def dns_tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("203.0.113.53", 53))
    s.listen(16)
    while True:
        c, _ = s.accept()
        try:
            c.settimeout(5)
            head = c.recv(2, socket.MSG_WAITALL)
            q = c.recv(struct.unpack(">H", head)[0], socket.MSG_WAITALL)
            a = answer(q, False)
            c.sendall(struct.pack(">H", len(a)) + a)
        except (OSError, struct.error, IndexError):
            pass
        c.close()


def tcp(address, port):
    s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        c.sendall(("hello from %s\n" % address).encode())
        c.close()


threads = [threading.Thread(target=dns_udp, daemon=True),
           threading.Thread(target=dns_tcp, daemon=True)]
for address in ("203.0.113.5", "203.0.113.6", "203.0.113.7", "2001:db8:ffff::99"):
    for port in (80, 8080):
        threads.append(threading.Thread(target=tcp, args=(address, port), daemon=True))
for t in threads:
    t.start()
print("ready", flush=True)
threading.Event().wait()
